"""The retail catalog mapping: invoice lines aggregated into one item per product code."""

import csv
import gzip
from pathlib import Path

import pytest

from pickwise_pipeline.retail_catalog import COLUMNS, aggregate, category_of, load
from pickwise_pipeline.retail_codes import is_product_code

pytestmark = pytest.mark.unit


def line(code: str, description: str, quantity: int | str = 1, price: float | str = 1.0, *, invoice: str = "536365",
         customer: str = "17850.0", date: str = "2010-12-01 08:26:00") -> list[str]:
    return [invoice, code, description, str(quantity), date, str(price), customer, "United Kingdom"]


def by_id(lines: list[list[str]]) -> dict:
    return {item.item_id: item for item in aggregate(lines).items}


def test_title_is_the_most_frequent_description_with_spaces_tidied() -> None:
    items = by_id([line("85123A", "CREAM HANGING HEART T-LIGHT HOLDER"),
                   line("85123A", "WHITE HANGING HEART T-LIGHT HOLDER  ", invoice="536366"),
                   line("85123A", "WHITE  HANGING HEART T-LIGHT HOLDER", invoice="536367")])
    assert items["or-85123A"].title == "WHITE HANGING HEART T-LIGHT HOLDER"


def test_price_is_the_median_unit_price_in_gbp() -> None:
    item = by_id([line("22423", "REGENCY CAKESTAND 3 TIER", price=p, invoice=str(536365 + n))
                  for n, p in enumerate((10.95, 12.75, 12.75, 24.96, 11.0))])["or-22423"]
    assert (item.price, item.currency, item.price_inr, item.catalog) == (12.75, "GBP", None, "retail")


def test_codes_differing_only_by_case_are_one_item() -> None:
    catalog = aggregate([line("15056bl", "EDWARDIAN PARASOL BLACK", price=5.95),
                         line("15056BL", "EDWARDIAN PARASOL BLACK", price=4.95, invoice="536366")])
    assert [i.item_id for i in catalog.items] == ["or-15056BL"]
    assert catalog.items[0].attrs["spellings"] == ["15056BL", "15056bl"]
    assert catalog.case_variants_merged == 1
    assert catalog.items[0].price == 5.45


def test_non_product_codes_are_not_items_and_are_counted() -> None:
    catalog = aggregate([line("POST", "POSTAGE", price=18.0), line("M", "Manual", price=2.0),
                         line("m", "Manual", price=3.0, invoice="536366"), line("BANK CHARGES", "Bank Charges"),
                         line("gift_0001_20", "Dotcomgiftshop Gift Voucher £20.00", price=17.0),
                         line("DCGSSGIRL", "GIRLS PARTY BAG", price=3.29), line("22086", "PAPER CHAIN KIT")])
    assert [i.item_id for i in catalog.items] == ["or-22086"]
    assert catalog.excluded_codes == {"POST": 1, "M": 2, "BANK CHARGES": 1, "GIFT_0001_20": 1, "DCGSSGIRL": 1}
    assert catalog.report()["excluded_codes"] == 5


@pytest.mark.parametrize(("code", "product"), [("85123A", True), ("DCGS0003", True), ("10002", True),
                                               ("POST", False), ("C2", False), ("PADS", False), ("S", False),
                                               ("gift_0001_10", False), ("AMAZONFEE", False), ("", False)])
def test_product_code_rule(code: str, product: bool) -> None:
    assert is_product_code(code) is product


def test_cancellations_write_offs_and_free_lines_do_not_shape_the_item() -> None:
    catalog = aggregate([line("21730", "GLASS STAR FROSTED T-LIGHT HOLDER", price=4.25),
                         line("21730", "GLASS STAR FROSTED T-LIGHT HOLDER", -1, 99.0, invoice="C536379"),
                         line("21730", "damaged", -10, 0.0, customer=""),
                         line("21730", "?", 5, 0.0, invoice="536400"),
                         line("20689", "check", -3, 0.0, customer="")])
    assert [(i.item_id, i.title, i.price) for i in catalog.items] == [("or-21730", "GLASS STAR FROSTED T-LIGHT HOLDER",
                                                                       4.25)]
    assert catalog.skipped_lines == {"cancellation": 1, "quantity not positive": 2, "price not positive": 1}
    assert catalog.codes_without_sale == ["20689"]


def test_malformed_lines_are_counted_and_skipped() -> None:
    catalog = aggregate([line("22086", "PAPER CHAIN KIT"), line("22086", "PAPER CHAIN KIT", "lots"),
                         line("22086", "PAPER CHAIN KIT", 1, "1,5"), ["536365", "22086", "too short"],
                         line(" ", "NO CODE")])
    assert len(catalog.items) == 1 and catalog.rows_read == 5
    assert catalog.malformed == {"non-numeric quantity or price": 2, "wrong field count": 1, "missing stock code": 1}
    assert catalog.report()["rows_rejected"] == 4


def test_exact_duplicate_lines_count_once() -> None:
    catalog = aggregate([line("22086", "PAPER CHAIN KIT", price=2.0), line("22086", "PAPER CHAIN KIT", price=2.0),
                         line("22086", "PAPER CHAIN KIT", price=5.0, invoice="536366")])
    assert catalog.duplicate_rows == 1
    assert catalog.items[0].attrs["lines"] == 2 and catalog.items[0].price == 3.5


@pytest.mark.parametrize(("title", "category"), [
    ("WHITE HANGING HEART T-LIGHT HOLDER", "candles and lights"), ("LUNCH BAG RED RETROSPOT", "bags"),
    ("PAPER CHAIN KIT 50'S CHRISTMAS", "christmas"), ("SET OF 3 CAKE TINS PANTRY DESIGN", "kitchen and tableware"),
    ("INFLATABLE POLITICAL GLOBE", "other")])
def test_category_comes_from_a_keyword_of_the_title(title: str, category: str) -> None:
    assert category_of(title) == category


def test_load_reads_a_gzip_csv_and_checks_the_header(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerow(line("22086", "PAPER CHAIN KIT", 12, 2.55))
    assert [i.item_id for i in load(path).items] == ["or-22086"]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("Brand,Model\nA,B\n")
    with pytest.raises(ValueError, match="expected the columns"):
        load(wrong)
