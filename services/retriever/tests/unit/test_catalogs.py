"""Several catalogs in one retriever: the free-text parser of a non-phone catalog, price facets in the catalog's
currency, and which catalog a request is served from."""

import pytest

from pickwise_common.catalogs import UnknownCatalog
from pickwise_common.embeddings import Embedder
from pickwise_common.schemas import Item
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.facets import facet_counts
from pickwise_retriever.query_parser import parse_free_text
from pickwise_retriever.retrieval import Retriever, catalog_expr

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("query", "price_min", "price_max", "text"), [
    ("red retrospot lunch bag under £5", None, 5.0, "red retrospot lunch bag"),
    ("cake tins between 2 and 5 pounds", 2.0, 5.0, "cake tins"),
    ("gifts over 10 pounds", 10.0, None, "gifts"),
    ("50p stickers", None, 0.5, "stickers"),
    ("mug around £3", 2.55, 3.45, "mug"),
    ("set of 12 pencils", None, None, "set 12 pencils"),
])
def test_free_text_reads_prices_in_pounds_and_keeps_the_rest(query: str, price_min: float | None,
                                                             price_max: float | None, text: str) -> None:
    parsed = parse_free_text(query)
    assert (parsed.constraints.price_min_inr, parsed.constraints.price_max_inr) == (price_min, price_max)
    assert parsed.text == text


def test_free_text_has_no_phone_vocabulary() -> None:
    parsed = parse_free_text("samsung 8gb ram blue phone under 15k")
    c = parsed.constraints
    assert (c.brands, c.ram_gb_min, c.colors, c.price_max_inr) == ([], None, [], None)
    assert "samsung" in parsed.text and parsed.corrections == []


def test_free_text_sort_intent() -> None:
    assert parse_free_text("cheapest heart candle").constraints.sort == "price_asc"


def _retail(n: int, title: str, price: float) -> Item:
    return Item(item_id=f"or-{n}", catalog="retail", title=title, category="other", price=price, currency="GBP",
                attrs={"invoices": n})


def test_price_facet_of_a_gbp_catalog_uses_pound_ranges() -> None:
    items = [_retail(1, "MUG", 0.85), _retail(2, "BAG", 1.65), _retail(3, "CAKESTAND", 12.75)]
    facets = facet_counts(items, [0, 1, 2], currency="GBP")
    assert [(v.value, v.label, v.count) for v in facets["price"]] == [
        ("-1", "Under £1", 1), ("1-2", "£1 – £2", 1), ("10-20", "£10 – £20", 1)]
    assert "brand" not in facets and "ram" not in facets


def test_catalog_expression_limits_the_search_to_the_catalog() -> None:
    assert catalog_expr("retail", "") == 'catalog == "retail"'
    assert catalog_expr("retail", "price >= 1.0") == 'catalog == "retail" and (price >= 1.0)'


def test_unknown_or_unloaded_catalog_is_a_404_naming_the_field() -> None:
    retail = Catalog.from_items([_retail(1, "MUG", 0.85)], name="retail")
    retriever = Retriever({"retail": retail}, Embedder(), None, "items")
    assert retriever.catalog_for("retail") is retail
    for name in ("nosuch", "flipkart"):
        with pytest.raises(UnknownCatalog) as raised:
            retriever.catalog_for(name)
        assert raised.value.fields[0]["field"] == "catalog"


def test_fallback_order_of_a_catalog_without_ratings_is_invoices() -> None:
    catalog = Catalog.from_items([_retail(3, "MUG", 0.85), _retail(9, "BAG", 1.65)], name="retail")
    assert catalog.fallback_score == [3.0, 9.0]
    assert catalog.currency == "GBP"
