"""The feed's blending as pure logic: neighbours of recent clicks weigh by recency and rank, brand
affinity nudges, bought items and repeated models stay out, popularity fills below."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pickwise_common.features import UserFeatures
from pickwise_common.schemas import Item
from pickwise_gateway.feed import blend_similar, brand_affinities, fill, items_of

pytestmark = pytest.mark.unit


def _item(item_id: str, brand: str = "samsung", group: str | None = None) -> Item:
    return Item(item_id=item_id, title=item_id, brand=brand, model=item_id, price_inr=10000, price_band="mid",
                group_id=group or f"g-{item_id}")


def test_items_of_reads_the_candidates_of_a_retriever_list_answer() -> None:
    raw: dict[str, Any] = _item("a").model_dump()
    body = {"source": "24h", "candidates": [{"item": raw, "fused_score": 1}, {"item": _item("b").model_dump(),
                                                                               "fused_score": 0.5}]}
    assert [i.item_id for i in items_of(body)] == ["a", "b"]


def test_items_of_refuses_a_body_that_breaks_the_contract() -> None:
    with pytest.raises(ValidationError):
        items_of({"items": [_item("a").model_dump()]})


def test_neighbours_of_the_newest_click_rank_first() -> None:
    features = UserFeatures(user_id="u", recent_clicks=["new", "old"])
    ranked = blend_similar([("new", [_item("n1")]), ("old", [_item("o1")])], features, exclude=set())
    assert [f.item.item_id for f in ranked] == ["n1", "o1"]
    assert ranked[0].source_item_id == "new"


def test_bought_items_seeds_and_repeated_models_are_left_out() -> None:
    features = UserFeatures(user_id="u", recent_clicks=["s"])
    neighbours = [("s", [_item("s"), _item("bought"), _item("x1", group="g"), _item("x2", group="g"), _item("y")])]
    ranked = blend_similar(neighbours, features, exclude={"bought", "s"})
    assert [f.item.item_id for f in ranked] == ["x1", "y"]


def test_brand_affinity_lifts_an_item_of_the_preferred_brand() -> None:
    features = UserFeatures(user_id="u", recent_clicks=["s"], affinities={"brand:apple": 3.0, "brand:samsung": 0.1})
    ranked = blend_similar([("s", [_item("sam"), _item("app", brand="Apple")])], features, exclude=set())
    assert ranked[0].item.item_id == "sam"  # rank 0 scores 1.0 * (1 + 0.3 * 0.033)
    close = blend_similar([("s", [_item("sam"), _item("app", brand="Apple")]), ("t", [_item("app", brand="Apple")])],
                          features, exclude=set())
    assert close[0].item.item_id == "app"  # near two clicks and of the preferred brand


def test_brand_affinities_strongest_first() -> None:
    features = UserFeatures(user_id="u", affinities={"brand:a": 1.0, "category:mobile": 9.0, "brand:b": 2.0})
    assert brand_affinities(features) == [("b", 2.0), ("a", 1.0)]


def test_fill_adds_new_models_below_the_floor_up_to_k() -> None:
    feed = blend_similar([("s", [_item("x", group="g")])], UserFeatures(user_id="u"), exclude=set())
    fill(feed, [(_item("x2", group="g"), 1.0), (_item("bought"), 1.0), (_item("p1"), 1.0), (_item("p2"), 0.5)],
         "popular", exclude={"bought"}, k=3, floor=feed[-1].score)
    assert [(f.item.item_id, f.reason) for f in feed] == [("x", "similar"), ("p1", "popular"), ("p2", "popular")]
    assert feed[1].score <= feed[0].score
