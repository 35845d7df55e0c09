"""The one constraint model: verdict, mask, fallback filter and ranking verdicts agree; colours match by words;
explicit filters are canonicalised or rejected naming the field; the relaxation ladder keeps its stated order."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pickwise_common.constraints import (
    Columns,
    canonical_filters,
    color_holds,
    feature_verdicts,
    mask,
    matches,
    milvus_filter,
    relaxations,
    satisfies,
)
from pickwise_common.errors import InvalidInput
from pickwise_common.schemas import Constraints, Item

pytestmark = pytest.mark.unit

COLOURS = ("Ocean Blue", "Midnight Black", "Rose Gold", "Space Gray", "SeaBlue", "Blue", None, "Mint-Green", "Red")
BRANDS = ("Samsung", "Apple", "OPPO", "Nokia", "iQOO")


def _items(n: int = 300, seed: int = 7) -> list[Item]:
    rng = random.Random(seed)
    items = []
    for i in range(n):
        ram = rng.choice([None, 0.004, 2, 3, 4, 6, 8, 12])
        items.append(Item(
            item_id=f"i-{i}", title=f"item {i}", brand=rng.choice(BRANDS), model=f"M{i}", color=rng.choice(COLOURS),
            ram_gb=ram, storage_gb=rng.choice([None, 8, 32, 64, 128, 256]), price_inr=rng.randrange(900, 90_000),
            discount_pct=rng.choice([None, 0.0, 5.5, 12.0, 30.0]), rating=rng.choice([None, 3.9, 4.1, 4.2, 4.3, 4.5]),
            price_band=rng.choice(["budget", "mid", "premium", "flagship"]), group_id=f"g-{i // 2}",
            attrs={"feature_phone": ram is not None and ram < 1} if i % 5 else {}))
    return items


def random_constraints(rng: random.Random) -> Constraints:
    """A random combination of every kind of constraint (each set with some chance)."""
    def maybe(p: float = 0.35) -> bool:
        return rng.random() < p

    c: dict = {}
    if maybe():
        c["brands"] = rng.sample(["Samsung", "samsung", "APPLE", "oppo", "Nokia", "iQOO"], rng.randint(1, 2))
    if maybe(0.15):
        c["brands_exclude"] = [rng.choice(["Apple", "nokia"])]
    if maybe():
        c["price_max_inr"] = rng.choice([5_000, 10_000, 15_000, 20_000, 35_000, 60_000])
    if maybe(0.2):
        c["price_min_inr"] = rng.choice([1_000, 8_000, 12_000, 25_000])
    if maybe():
        c["ram_gb_min"] = rng.choice([2, 4, 6, 8])
    if maybe(0.15):
        c["ram_gb_max"] = rng.choice([4, 8, 12])
    if maybe():
        c["storage_gb_min"] = rng.choice([32, 64, 128])
    if maybe(0.15):
        c["storage_gb_max"] = rng.choice([64, 128, 256])
    if maybe():
        c["rating_min"] = rng.choice([3.5, 4.0, 4.2, 4.3, 4.5])
    if maybe(0.2):
        c["discount_pct_min"] = rng.choice([5, 10, 25])
    if maybe(0.2):
        c["price_bands"] = rng.sample(["budget", "mid", "premium", "flagship"], rng.randint(1, 2))
    if maybe(0.2):
        c["feature_phone"] = rng.choice([True, False])
    if maybe():
        c["colors"] = rng.sample(["blue", "ocean blue", "black", "grey", "rose gold", "sea blue", "mint green", "red"],
                                 rng.randint(1, 2))
    return Constraints(**c)


def test_mask_verdict_fallback_and_ranking_agree_on_200_combinations() -> None:
    items = _items()
    columns = Columns.from_items(items)
    rng = random.Random(20260731)
    matched = 0
    for _ in range(200):
        c = random_constraints(rng)
        by_mask = mask(columns, c)
        by_verdict = np.array([all(satisfies(i, c).values()) for i in items])
        by_fallback = np.array([matches(i, c) for i in items])
        by_ranking = np.array([all(v for v in feature_verdicts(i, c).values() if v is not None) for i in items])
        assert (by_mask == by_verdict).all(), c
        assert (by_mask == by_fallback).all(), c
        assert (by_mask == by_ranking).all(), c
        matched += bool(by_mask.any()) and not by_mask.all()
    assert matched >= 100  # most combinations keep some items and drop others: the agreement is not vacuous


@pytest.mark.parametrize(("item_colour", "wanted", "expected"), [
    ("Ocean Blue", ["ocean blue"], True), ("Ocean Blue", ["blue"], True), ("Deep Ocean Blue", ["ocean blue"], True),
    ("Blue Ocean", ["ocean blue"], False), ("SeaBlue", ["blue"], True), ("Space Gray", ["grey"], True),
    ("Rose-Gold", ["rose gold"], True), ("Golden", ["gold"], False), ("Starred", ["red"], False),
    (None, ["black"], False),
])
def test_a_colour_matches_by_whole_words_in_order(item_colour: str | None, wanted: list[str], expected: bool) -> None:
    assert color_holds(item_colour, wanted) is expected


def test_feature_phone_is_the_items_flag() -> None:
    flagged = Item(item_id="a", title="a", brand="Nokia", model="105", price_inr=1200, price_band="budget",
                   group_id="a", ram_gb=0.004, attrs={"feature_phone": True})
    assert matches(flagged, Constraints(feature_phone=True))
    assert not matches(flagged, Constraints(feature_phone=False))


def test_unknown_numbers_never_satisfy_a_bound() -> None:
    item = _items(1)[0].model_copy(update={"rating": None, "ram_gb": None})
    assert satisfies(item, Constraints(rating_min=1, ram_gb_max=64)) == {"rating_min": False, "ram_gb_max": False}


def test_milvus_expression_takes_values_from_the_catalog_never_from_the_request() -> None:
    columns = Columns.from_items(_items())
    expr = milvus_filter(Constraints(brands=['x" or 1==1 or "'], colors=["ocean blue"]), columns)
    assert expr == 'brand in [] and color in ["ocean blue"]'


def test_explicit_filters_read_like_parsed_ones() -> None:
    c = canonical_filters(Constraints(brands=["samsung", "Galaxy", "one plus"],
                                      colors=["Rose-Gold", "OCEAN BLUE", "gray"]))
    assert c is not None
    assert c.brands == ["Samsung", "OnePlus"]
    assert c.colors == ["rose gold", "ocean blue", "grey"]


@pytest.mark.parametrize(("filters", "field"), [
    ({"colors": ["<script>"]}, "body.filters.colors.0"),
    ({"colors": ["blue", "zzqx"]}, "body.filters.colors.1"),
    ({"brands": ["Acme Phones"]}, "body.filters.brands.0"),
    ({"brands_exclude": ["'; drop table"]}, "body.filters.brands_exclude.0"),
])
def test_a_value_that_is_not_understood_is_invalid_input_naming_the_field(filters: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        canonical_filters(Constraints(**filters))
    assert [f["field"] for f in raised.value.fields] == [field]


def test_relaxation_order_price_then_ram_storage_then_rating() -> None:
    c = Constraints(brands=["Samsung"], price_max_inr=20_000, ram_gb_min=8, storage_gb_min=128, rating_min=4.3,
                    colors=["blue"])
    steps = relaxations(c)
    assert [fields for _, fields in steps] == [
        ["price_max_inr"], ["price_max_inr"], ["price_max_inr", "ram_gb_min", "storage_gb_min"],
        ["price_max_inr", "ram_gb_min", "storage_gb_min", "rating_min"]]
    loosest = steps[-1][0]
    assert (loosest.price_max_inr, loosest.ram_gb_min, loosest.storage_gb_min) == (25_000, 6, 64)
    assert loosest.rating_min == pytest.approx(3.8)
    assert (loosest.brands, loosest.colors) == (["Samsung"], ["blue"])  # never relaxed


def test_nothing_to_relax_is_no_step() -> None:
    assert relaxations(Constraints(brands=["Apple"], colors=["red"])) == []
