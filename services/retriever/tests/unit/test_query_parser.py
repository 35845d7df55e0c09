"""Query parser: phrasings of prices, brands, memory, ratings, bands and sort intents."""

import pytest

from pickwise_common.schemas import Constraints, RetrieveRequest
from pickwise_retriever.query_parser import merge_filters, parse_query, refine
from pickwise_retriever.retrieval import plan

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("query", "price_max"), [
    ("under 15k", 15000),
    ("phones below ₹15,000", 15000),
    ("less than 15000 rupees", 15000),
    ("within a 15K budget", 15000),
    ("mobile under Rs. 12,999", 12999),
    ("under rs 8000", 8000),
    ("phone upto 20 thousand", 20000),
    ("best phone up to 25k", 25000),
    ("samsung phone not more than 18000", 18000),
    ("budget of 10k", 10000),
    ("my budget is ₹9,500", 9500),
    ("20000 or less", 20000),
    ("phone for 12000 rs max", 12000),
    ("under 1.5 lakh", 150000),
    ("below 1 lakh iphone", 100000),
    ("cheaper than 30k", 30000),
    ("phone at most ₹ 7,000", 7000),
    ("under 15", 15000),
    ("within 1,20,000", 120000),
    ("15k phone", 15000),
])
def test_price_caps(query: str, price_max: float) -> None:
    parsed = parse_query(query).constraints
    assert parsed.price_max_inr == price_max
    assert parsed.price_min_inr is None


@pytest.mark.parametrize(("query", "price_min"), [
    ("above 50k", 50000),
    ("flagship phone above 50000", 50000),
    ("premium mobile over 90000", 90000),
    ("more than ₹40,000", 40000),
    ("at least 30 thousand", 30000),
    ("phones starting from 60k", 60000),
    ("1 lakh and above", 100000),
    ("80000+ phones", 80000),
])
def test_price_floors(query: str, price_min: float) -> None:
    parsed = parse_query(query).constraints
    assert parsed.price_min_inr == price_min
    assert parsed.price_max_inr is None


@pytest.mark.parametrize(("query", "low", "high"), [
    ("15-20k", 15000, 20000),
    ("phone between 8000 and 13000", 8000, 13000),
    ("mobile from 10000 to 15000", 10000, 15000),
    ("phones from 10k to 15k", 10000, 15000),
    ("between ₹10,000 and ₹20,000", 10000, 20000),
    ("10k-15k samsung", 10000, 15000),
    ("between 1 and 1.5 lakh", 100000, 150000),
    ("in the 20 to 30 thousand range", 20000, 30000),
    ("price range 12000-18000", 12000, 18000),
    ("around 20k", 17000, 23000),
    ("phone priced at ₹20,000", 17000, 23000),
    ("samsung for 20000", 17000, 23000),
])
def test_price_ranges(query: str, low: float, high: float) -> None:
    parsed = parse_query(query).constraints
    assert (parsed.price_min_inr, parsed.price_max_inr) == (low, high)


@pytest.mark.parametrize(("query", "brands"), [
    ("Samsung under 15k", ["Samsung"]),
    ("SAMSUNG galaxy", ["Samsung"]),
    ("redmi note 10", ["Xiaomi"]),
    ("iphone 13", ["Apple"]),
    ("google pixel 3a", ["Google"]),
    ("one plus phone", ["OnePlus"]),
    ("moto g", ["Motorola"]),
    ("samsung or vivo phones", ["Samsung", "Vivo"]),
    ("IQOO mobile", ["iQOO"]),
    ("realme narzo", ["Realme"]),
])
def test_brands_and_aliases(query: str, brands: list[str]) -> None:
    assert parse_query(query).constraints.brands == brands


def test_excluded_brand_is_not_a_wanted_brand() -> None:
    parsed = parse_query("phone under 20k but not samsung").constraints
    assert parsed.brands == []
    assert parsed.brands_exclude == ["Samsung"]


@pytest.mark.parametrize(("query", "ram", "storage"), [
    ("8/128 vivo", 8, 128),
    ("8gb ram oppo", 8, None),
    ("phone with 8 gb ram and 256 gb rom", 8, 256),
    ("4GB RAM 64GB storage phone", 4, 64),
    ("Samsung with 256GB storage", None, 256),
    ("12 GB + 256 GB variant", 12, 256),
    ("1TB phone", None, 1024),
    ("ram 6gb under 20k", 6, None),
    ("at least 8gb ram", 8, None),
    ("128 gb internal storage", None, 128),
])
def test_ram_and_storage(query: str, ram: float | None, storage: float | None) -> None:
    parsed = parse_query(query).constraints
    assert parsed.ram_gb_min == ram
    assert parsed.storage_gb_min == storage


def test_memory_sizes_are_never_prices() -> None:
    parsed = parse_query("8gb ram 128gb phone under 20k").constraints
    assert parsed.price_max_inr == 20000
    assert parsed.price_min_inr is None
    assert (parsed.ram_gb_min, parsed.storage_gb_min) == (8, 128)


def test_exact_memory_named_is_preferred_but_at_least_is_not() -> None:
    assert parse_query("8gb ram phone").prefer == {"ram_gb": 8}
    assert parse_query("at least 8gb ram phone").prefer == {}


def test_model_numbers_stay_search_text() -> None:
    parsed = parse_query("Realme C11 2021")
    assert parsed.constraints.price_min_inr is None and parsed.constraints.price_max_inr is None
    assert parsed.text == "c11 2021"
    assert parsed.informative


def test_model_year_after_for_is_not_a_price() -> None:
    parsed = parse_query("Realme C11 for 2021").constraints
    assert parsed.price_min_inr is None and parsed.price_max_inr is None


def test_decimal_model_number_is_not_a_price() -> None:
    parsed = parse_query("Nokia 2.4")
    assert parsed.constraints.brands == ["Nokia"]
    assert parsed.constraints.price_max_inr is None
    assert parsed.text == "2.4"


@pytest.mark.parametrize(("query", "sort"), [
    ("cheapest Gionee phones", "price_asc"),
    ("lowest priced samsung", "price_asc"),
    ("most expensive apple phone", "price_desc"),
    ("best rated phone under 20k", "rating_desc"),
    ("top-rated OnePlus phone", "rating_desc"),
    ("best reviewed Realme mobile", "rating_desc"),
    ("oppo phones price low to high", "price_asc"),
])
def test_sort_intents(query: str, sort: str) -> None:
    assert parse_query(query).constraints.sort == sort


@pytest.mark.parametrize(("query", "rating"), [
    ("phones with 4.5 stars and above", 4.5),
    ("rating above 4", 4.0),
    ("4+ star samsung", 4.0),
    ("rated at least 4.3", 4.3),
    ("highly rated vivo phones", 4.0),
])
def test_rating_words(query: str, rating: float) -> None:
    assert parse_query(query).constraints.rating_min == rating


def test_rating_numbers_are_never_prices() -> None:
    parsed = parse_query("4.5 star phone under 30k").constraints
    assert parsed.rating_min == 4.5
    assert parsed.price_max_inr == 30000


@pytest.mark.parametrize(("query", "bands"), [
    ("budget phone", ["budget"]),
    ("cheap samsung mobile", ["budget"]),
    ("mid-range phone", ["mid"]),
    ("flagship phone", ["flagship"]),
    ("premium mobile", ["premium"]),
])
def test_band_words(query: str, bands: list[str]) -> None:
    assert parse_query(query).constraints.price_bands == bands


def test_explicit_price_wins_over_band_word() -> None:
    parsed = parse_query("premium mobile over 90000").constraints
    assert parsed.price_bands == []
    assert parsed.price_min_inr == 90000


@pytest.mark.parametrize(("query", "discount"), [
    ("Samsung phones with big discount", 25.0),
    ("phones with at least 30% off", 30.0),
    ("discounted oppo phones", 10.0),
])
def test_discount_words(query: str, discount: float) -> None:
    assert parse_query(query).constraints.discount_pct_min == discount


@pytest.mark.parametrize("query", ["basic keypad phone under 1500", "feature phone", "nokia button phone"])
def test_feature_phone_words(query: str) -> None:
    assert parse_query(query).constraints.feature_phone is True


def test_colour() -> None:
    assert parse_query("redmi note 10 pro in black").constraints.colors == ["black"]


def test_constraint_only_query_is_not_informative() -> None:
    parsed = parse_query("phone between 8000 and 13000")
    assert not parsed.informative


def test_refinement_what_about_brand_keeps_the_price() -> None:
    previous = parse_query("xiaomi phones under 15k").constraints
    parsed = parse_query("what about Samsung")
    assert parsed.refinement
    merged = refine(previous, parsed)
    assert merged.brands == ["Samsung"]
    assert merged.price_max_inr == 15000


def test_refinement_cheaper_lowers_the_cap_and_sorts_by_price() -> None:
    previous = parse_query("samsung under 20k").constraints
    merged = refine(previous, parse_query("cheaper ones"))
    assert merged.brands == ["Samsung"]
    assert merged.price_max_inr == 16000
    assert merged.sort == "price_asc"


def test_filters_merge_takes_the_stricter_bound() -> None:
    parsed = parse_query("samsung under 15k").constraints
    merged = merge_filters(parsed, Constraints(price_max_inr=20000, price_min_inr=5000))
    assert (merged.price_min_inr, merged.price_max_inr) == (5000, 15000)
    assert merged.brands == ["Samsung"]


def test_disjoint_brand_filter_matches_nothing() -> None:
    merged = merge_filters(parse_query("apple phone").constraints, Constraints(brands=["Samsung"]))
    assert merged.brands == ["(none)"]


def test_price_min_above_max_is_impossible() -> None:
    assert parse_query("above 50k under 20k").constraints.impossible


def test_constraint_only_follow_up_refines_but_a_new_product_search_does_not() -> None:
    previous = Constraints(brands=["Xiaomi"], ram_gb_min=8)
    follow_up = plan(RetrieveRequest(query="under 10k", previous=previous))
    assert follow_up.refined and follow_up.constraints.brands == ["Xiaomi"]
    assert follow_up.constraints.price_max_inr == 10000
    fresh = plan(RetrieveRequest(query="apple phones under 50k", previous=previous))
    assert not fresh.refined
    assert fresh.constraints.brands == ["Apple"] and fresh.constraints.ram_gb_min is None
