"""Catalog normalisation of messy rows: brands, units, prices, ratings, duplicates, rejects, ids."""

import json

import pytest

from pickwise_pipeline.catalog import ColumnMapping, normalise, parse_size_gb, price_band, read_rows

pytestmark = pytest.mark.unit


def _row(brand: str = "SAMSUNG", model: str = "Galaxy M31", color: str = "Black", memory: str = "6 GB RAM",
         storage: str = "128 GB ROM", rating: str = "4.3", price: str = "15999", original: str = "18999") -> dict:
    return {"Brand": brand, "Model": model, "Color": color, "Memory": memory, "Storage": storage,
            "Rating": rating, "Selling Price": price, "Original Price": original}


@pytest.mark.parametrize(("raw", "gb"), [("4 GB RAM", 4.0), ("4GB RAM", 4.0), ("512 MB", 0.5), ("1 TB", 1024.0),
                                         ("nan", None), ("", None), ("1.5 GB RAM", 1.5)])
def test_sizes_in_gb(raw: str, gb: float | None) -> None:
    assert parse_size_gb(raw)[0] == gb


def test_price_bands_edges() -> None:
    assert [price_band(p) for p in (14999, 15000, 29999, 30000, 69999, 70000)] == \
        ["budget", "mid", "mid", "premium", "premium", "flagship"]


def test_brand_aliases_and_ids_are_row_numbers() -> None:
    out = normalise([_row(), _row(brand="Samsung", color="Blue")])
    assert [i.item_id for i in out.items] == ["fm-00001", "fm-00002"]
    assert {i.brand for i in out.items} == {"Samsung"}


def test_colour_variants_share_a_group_and_other_configs_do_not() -> None:
    out = normalise([_row(), _row(color="Blue"), _row(memory="8 GB RAM")])
    assert out.items[0].group_id == out.items[1].group_id != out.items[2].group_id


def test_discount_and_missing_rating() -> None:
    item = normalise([_row(rating="", price="15000", original="20000")]).items[0]
    assert item.discount_pct == 25.0
    assert item.rating is None


def test_price_in_rating_column_is_dropped_not_trusted() -> None:
    out = normalise([_row(rating="54999.0")])
    assert out.items[0].rating is None
    assert out.fixes["rating_out_of_range_dropped"] == 1


def test_rows_without_price_or_brand_are_rejected_with_reason() -> None:
    out = normalise([_row(price="nan"), _row(brand=""), _row()])
    assert [r["reason"] for r in out.rejected] == ["missing or non-numeric price", "missing brand"]
    assert [i.item_id for i in out.items] == ["fm-00003"]


def test_exact_duplicates_are_reported_and_keep_their_ids() -> None:
    out = normalise([_row(), _row()])
    assert out.duplicates == [{"item_id": "fm-00002", "duplicate_of": "fm-00001"}]
    assert len(out.items) == 2


def test_feature_phone_with_mb_memory() -> None:
    item = normalise([_row(brand="Nokia", model="105", memory="4 MB", storage="4 MB", price="1299")]).items[0]
    assert item.attrs["feature_phone"] is True
    assert item.ram_gb == pytest.approx(4 / 1024, abs=1e-4)
    assert item.price_band == "budget"


def test_another_catalog_through_a_mapping() -> None:
    mapping = ColumnMapping(catalog="shop", id_prefix="sp", brand="make", model="name", color=None, ram="ram",
                            storage=None, rating=None, price="price", original_price=None)
    item = normalise([{"make": "redmi", "name": "Note 9", "ram": "4GB", "price": "₹11,999"}], mapping).items[0]
    assert (item.item_id, item.brand, item.price_inr, item.ram_gb) == ("sp-00001", "Xiaomi", 11999.0, 4.0)


def test_jsonl_catalog_is_read_line_by_line(tmp_path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(json.dumps(_row(color=c)) for c in ("Black", "Blue")) + "\n\n", encoding="utf-8")
    out = normalise(read_rows(path))
    assert [i.color for i in out.items] == ["Black", "Blue"]
