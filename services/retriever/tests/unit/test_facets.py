"""Facet counts over a candidate pool, and the filters their values stand for."""

import pytest

from pickwise_common.schemas import Constraints, Item
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.facets import facet_counts, facet_filter, parse_range
from pickwise_retriever.query_parser import merge_filters

pytestmark = pytest.mark.unit


def _item(n: int, brand: str, model: str, price: float, ram: float | None, storage: float | None,
          rating: float | None, color: str = "Black") -> Item:
    return Item(item_id=f"f-{n:02d}", title=f"{brand} {model} ({color})", brand=brand, model=model, color=color,
                ram_gb=ram, storage_gb=storage, price_inr=price, rating=rating, price_band="budget",
                group_id=f"g-{brand}-{model}-{ram}-{storage}".lower())


POOL = [
    _item(1, "Samsung", "Galaxy M31", 15999, 6, 128, 4.4),
    _item(2, "Samsung", "Galaxy M31", 15999, 6, 128, 4.4, color="Blue"),   # a colour of the same model
    _item(3, "Samsung", "Galaxy M21", 12999, 4, 64, 4.3),
    _item(4, "Realme", "Narzo 50", 10000, 4, 64, 4.1),                      # exactly on a price edge
    _item(5, "Realme", "GT", 31999, 8, 128, 4.6),
    _item(6, "Nokia", "105", 1299, 0.0039, 0.002, 3.9),                     # feature phone: MB sizes
    _item(7, "Apple", "iPhone 13", 69900, None, 1024, None),               # unknown RAM and rating
    _item(8, "Xiaomi", "Redmi 9", 8999, 4, 64, 4.2),
]


CATALOG = Catalog.from_items(POOL)


def _facets():
    return facet_counts(POOL, range(len(POOL)))


def _by_value(facets, name: str) -> dict[str, int]:
    return {v.value: v.count for v in facets[name]}


def test_brand_counts_models_not_colours() -> None:
    facets = _facets()
    assert _by_value(facets, "brand") == {"Samsung": 2, "Realme": 2, "Apple": 1, "Nokia": 1, "Xiaomi": 1}
    assert [v.value for v in facets["brand"]][:2] == ["Realme", "Samsung"]  # by count, then by name


def test_a_price_on_an_edge_counts_in_both_ranges() -> None:
    prices = _by_value(_facets(), "price")
    assert prices == {"-10000": 3, "10000-15000": 2, "15000-20000": 1, "30000-50000": 1, "50000-": 1}


def test_sizes_below_a_gigabyte_share_one_bucket_and_a_terabyte_is_labelled_so() -> None:
    facets = _facets()
    assert _by_value(facets, "ram") == {"-0.999": 1, "4-4": 3, "6-6": 1, "8-8": 1}
    storage = {v.value: v.label for v in facets["storage"]}
    assert storage["-0.999"] == "Under 1 GB" and storage["1024-1024"] == "1 TB"


def test_rating_values_are_cumulative_minimums() -> None:
    ratings = {v.label: v.count for v in _facets()["rating"]}
    assert ratings == {"4.5★ & up": 1, "4★ & up": 5, "3.5★ & up": 6, "3★ & up": 6}


def test_every_count_is_what_its_filter_keeps_of_the_pool() -> None:
    for name, values in _facets().items():
        for value in values:
            mask = CATALOG.mask(facet_filter(name, value.value))
            kept = {POOL[n].group_id for n in range(len(POOL)) if mask[n]}
            assert len(kept) == value.count, (name, value)


def test_a_facet_value_merges_with_the_query_constraints() -> None:
    parsed = Constraints(brands=["Samsung"], price_max_inr=20000)
    merged = merge_filters(parsed, facet_filter("brand", _facets()["brand"][1].value))
    assert merged.brands == ["Samsung"]
    merged = merge_filters(parsed, facet_filter("price", "10000-15000"))
    assert (merged.price_min_inr, merged.price_max_inr) == (10000, 15000)


def test_facets_cover_only_the_candidates_given() -> None:
    facets = facet_counts(POOL, [0, 1, 4])
    assert _by_value(facets, "brand") == {"Samsung": 1, "Realme": 1}
    assert _by_value(facets, "price") == {"15000-20000": 1, "30000-50000": 1}


def test_empty_pool_has_no_facets() -> None:
    assert facet_counts(POOL, []) == {}


@pytest.mark.parametrize("value", ["10000", "-", "abc-def"])
def test_malformed_range_is_rejected(value: str) -> None:
    with pytest.raises(ValueError):
        parse_range(value)


def test_rating_takes_only_a_lower_bound() -> None:
    assert facet_filter("rating", "4-").rating_min == 4
    with pytest.raises(ValueError):
        facet_filter("rating", "4-5")
