"""The arguments of the feature script: the user's keys of DESIGN §4 (one hash tag), weights by type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from pickwise_common.schemas import InteractionEvent
from pickwise_event_consumer.feature_update import FeatureParams, ItemMeta, script_call

pytestmark = pytest.mark.unit
PARAMS = FeatureParams(half_life_h=24, clicks_cap=50, seen_ttl_s=7, pop_hour_ttl_s=8, user_ttl_s=9)


def _event(kind: str) -> InteractionEvent:
    return InteractionEvent(event_id=uuid.UUID(int=7), type=kind, ts=datetime(2026, 11, 23, 6, 30, tzinfo=UTC),
                            user_id="u1", item_id="i9")


def test_script_keys_are_the_users_only() -> None:
    script_keys, _ = script_call(_event("click"), PARAMS, 0.0)
    assert script_keys == [f"u:{{u1}}:seen:{uuid.UUID(int=7)}", "u:{u1}:clicks", "u:{u1}:affinity"]


def test_item_brand_and_category_travel_as_arguments() -> None:
    _, args = script_call(_event("view"), PARAMS, 0.0, ItemMeta(brand="Samsung", category="mobile"))
    assert args[8:] == ["Samsung", "mobile"]


@pytest.mark.parametrize(("kind", "weight", "to_clicks"),
                         [("view", 0.2, "0"), ("click", 1.0, "1"), ("add_to_cart", 3.0, "1"), ("purchase", 5.0, "1")])
def test_weight_and_click_list_by_type(kind: str, weight: float, to_clicks: str) -> None:
    _, args = script_call(_event(kind), PARAMS, 0.0)
    assert float(args[1]) == weight
    assert args[6] == to_clicks
    assert float(args[3]) == 24 * 3600
