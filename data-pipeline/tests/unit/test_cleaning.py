"""Catalog cleaning: repair rules, expectations and quarantine, on made-up rows and on the real catalog rows that
are wrong today (listed in docs/evaluation.md)."""

from pathlib import Path

import pytest

from pickwise_pipeline.catalog import normalise, read_rows
from pickwise_pipeline.cleaning import ceilings

pytestmark = pytest.mark.unit

CATALOG = Path(__file__).resolve().parents[3] / "data" / "flipkart_mobiles.csv"


def _row(model: str = "Galaxy M31", memory: str = "6 GB RAM", storage: str = "128 GB ROM", rating: str = "4.3",
         price: str = "15999", brand: str = "SAMSUNG") -> dict[str, str]:
    return {"Brand": brand, "Model": model, "Color": "Black", "Memory": memory, "Storage": storage,
            "Rating": rating, "Selling Price": price, "Original Price": price}


@pytest.fixture(scope="module")
def real() -> dict[str, object]:
    out = normalise(read_rows(CATALOG))
    return {"items": {i.item_id: i for i in out.items}, "report": out.report()}


def test_lone_ram_on_a_budget_phone_is_storage_with_the_sibling_ram() -> None:
    out = normalise([_row(model="Galaxy M20", memory="3 GB RAM", storage="32 GB ROM", price="10990"),
                     _row(model="Galaxy M20", memory="32 GB RAM", storage="nan", price="9990")])
    item = out.items[1]
    assert (item.ram_gb, item.storage_gb) == (3.0, 32.0)
    assert item.group_id == out.items[0].group_id
    assert out.repaired[0]["rule"] == "lone_ram_is_storage"


def test_lone_ram_without_a_sibling_leaves_ram_unknown() -> None:
    item = normalise([_row(model="Galaxy M20", memory="32 GB RAM", storage="nan", price="9990")]).items[0]
    assert (item.ram_gb, item.storage_gb) == (None, 32.0)


def test_rating_that_copies_the_price_is_repaired_to_unknown() -> None:
    out = normalise([_row(rating="15999.0")])
    assert out.items[0].rating is None
    assert out.repaired == [{"item_id": "fm-00001", "row": 1, "title": out.items[0].title,
                             "rule": "rating_holds_price", "before": {"rating": 15999.0}, "after": {"rating": None}}]


def test_storage_off_a_standard_size_snaps_to_it() -> None:
    assert normalise([_row(storage="130 GB ROM")]).items[0].storage_gb == 128.0


def test_ram_in_gb_on_a_keypad_phone_with_mb_storage_is_mb() -> None:
    item = normalise([_row(model="Ctrl V5", memory="8 GB RAM", storage="2 MB", price="4790")]).items[0]
    assert item.ram_gb == pytest.approx(8 / 1024, abs=1e-4)
    assert item.attrs["feature_phone"] is True


@pytest.mark.parametrize(("row", "reason"), [
    (_row(memory="16 GB RAM", price="12999"), "RAM implausible for the price band"),
    (_row(memory="8 GB RAM", storage="8 GB ROM"), "RAM not below storage on a smartphone"),
    (_row(storage="1 TB", price="8999"), "storage implausible for the price band"),
])
def test_row_failing_an_expectation_is_quarantined_with_the_reason(row: dict[str, str], reason: str) -> None:
    out = normalise([_row(), row])
    assert [i.item_id for i in out.items] == ["fm-00001"]
    assert out.quarantined[0]["item_id"] == "fm-00002"
    assert reason in out.quarantined[0]["reasons"]
    assert out.report()["rows_quarantined"] == 1


def test_ceilings_by_price_band() -> None:
    assert ceilings(4999) == (4, 32)
    assert ceilings(19999) == (12, 512)
    assert ceilings(150000) == (24, 2048)


# ---------------------------------------------------------------- the real catalog


def test_real_galaxy_m20_row_shows_32_gb_storage(real: dict) -> None:
    item = real["items"]["fm-01852"]
    assert item.model == "Galaxy M20"
    assert item.storage_gb == 32.0 and item.ram_gb == 3.0


def test_real_catalog_has_no_phone_under_20k_claiming_more_than_12_gb_ram(real: dict) -> None:
    assert not [i.item_id for i in real["items"].values() if i.price_inr < 20000 and (i.ram_gb or 0) > 12]


def test_real_rows_repaired_today(real: dict) -> None:
    repaired = {(r["item_id"], r["rule"]) for r in real["report"]["repaired"]}
    assert {("fm-01852", "lone_ram_is_storage"), ("fm-00881", "ram_unit_is_mb")} <= repaired
    assert {i for i, rule in repaired if rule == "storage_off_standard_size"} == \
        {"fm-02841", "fm-02842", "fm-02846", "fm-02859", "fm-02860"}
    assert sum(1 for _, rule in repaired if rule == "rating_holds_price") == 74


def test_real_catalog_meets_every_expectation_after_repair(real: dict) -> None:
    assert real["report"]["rows_quarantined"] == 0
    assert real["report"]["items"] == 3903
