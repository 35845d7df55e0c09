"""The arguments of the feature script: the user's keys of DESIGN §4 (one hash tag), weights by type."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest

from pickwise_common.schemas import ImpressionEvent, ImpressionItem, InteractionEvent
from pickwise_event_consumer.feature_update import FeatureParams, ItemMeta, impression_script_call, script_call

pytestmark = pytest.mark.unit
PARAMS = FeatureParams(half_life_h=24, clicks_cap=50, seen_ttl_s=7, pop_hour_ttl_s=8, user_ttl_s=9)


def _event(kind: str) -> InteractionEvent:
    return InteractionEvent(event_id=uuid.UUID(int=7), type=kind, ts=datetime(2026, 11, 23, 6, 30, tzinfo=UTC),
                            user_id="u1", item_id="i9")


def test_script_keys_are_the_users_only() -> None:
    script_keys, _ = script_call(_event("click"), PARAMS, 0.0)
    assert script_keys == [f"u:{{u1}}:seen:{uuid.UUID(int=7)}", "u:{u1}:clicks", "u:{u1}:affinity",
                           "u:{u1}:hist", "u:{u1}:dismissed", "u:{u1}:shown"]


def test_keys_of_another_catalog_carry_its_prefix_and_the_users_hash_tag() -> None:
    event = _event("purchase").model_copy(update={"catalog": "retail"})
    script_keys, _ = script_call(event, PARAMS, 0.0)
    assert script_keys == [f"retail:u:{{u1}}:seen:{uuid.UUID(int=7)}", "retail:u:{u1}:clicks",
                           "retail:u:{u1}:affinity", "retail:u:{u1}:hist", "retail:u:{u1}:dismissed",
                           "retail:u:{u1}:shown"]
    assert all("{u1}" in key for key in script_keys)


@pytest.mark.parametrize(("kind", "quantity", "history"),
                         [("purchase", None, 1.0), ("purchase", 3, 1.0 + math.log1p(3)), ("click", None, 0.5),
                          ("add_to_cart", 2, 0.75), ("view", None, 0.0), ("dismiss", None, 0.0)])
def test_history_weight_by_type_and_quantity(kind: str, quantity: int | None, history: float) -> None:
    event = _event(kind).model_copy(update={"quantity": quantity})
    _, args = script_call(event, PARAMS, 0.0)
    assert float(args[10]) == pytest.approx(history, rel=1e-5)


def test_only_a_dismiss_marks_the_item_dismissed() -> None:
    flags = {kind: script_call(_event(kind), PARAMS, 0.0)[1][11] for kind in ("dismiss", "click", "purchase")}
    assert flags == {"dismiss": "1", "click": "0", "purchase": "0"}


def test_item_brand_and_category_travel_as_arguments() -> None:
    _, args = script_call(_event("view"), PARAMS, 0.0, ItemMeta(brand="Samsung", category="mobile"))
    assert args[8:10] == ["Samsung", "mobile"]


@pytest.mark.parametrize(("kind", "weight", "to_clicks"),
                         [("view", 0.2, "0"), ("click", 1.0, "1"), ("add_to_cart", 3.0, "1"), ("purchase", 5.0, "1")])
def test_weight_and_click_list_by_type(kind: str, weight: float, to_clicks: str) -> None:
    _, args = script_call(_event(kind), PARAMS, 0.0)
    assert float(args[1]) == weight
    assert args[6] == to_clicks
    assert float(args[3]) == 24 * 3600


def _impression(user: str | None, item_ids: list[str], catalog: str = "flipkart") -> ImpressionEvent:
    items = [ImpressionItem(item_id=i, position=n) for n, i in enumerate(item_ids)]
    return ImpressionEvent(event_id=uuid.UUID(int=8), request_id="r1", endpoint="search", user_id=user,
                           catalog=catalog, items=items)


def test_impression_script_counts_each_shown_item_once_in_the_users_slot() -> None:
    script_keys, args = impression_script_call(_impression("u1", ["a", "b", "a"], "retail"), PARAMS)
    assert script_keys == [f"retail:u:{{u1}}:seen:{uuid.UUID(int=8)}", "retail:u:{u1}:shown"]
    assert args == [str(PARAMS.seen_ttl_s), str(PARAMS.shown_ttl_s), "a", "b"]


def test_anonymous_impression_has_no_script_call() -> None:
    with pytest.raises(ValueError, match="anonymous"):
        impression_script_call(_impression(None, ["a"]), PARAMS)
