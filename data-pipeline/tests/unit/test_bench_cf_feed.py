"""bench-cf-feed's notion of "the feed changed": cold start flipped, or the ordered item ids differ."""

from __future__ import annotations

import pytest

from pickwise_pipeline.bench_cf_feed import feed_signature

pytestmark = pytest.mark.unit


def _feed(ids: list[str], cold: bool) -> dict:
    return {"cold_start": cold, "items": [{"item": {"item_id": i}, "score": 1.0} for i in ids]}


def test_same_items_in_the_same_order_is_no_change() -> None:
    assert feed_signature(_feed(["a", "b"], True)) == feed_signature(_feed(["a", "b"], True))


@pytest.mark.parametrize(("after"), [_feed(["b", "a"], True), _feed(["a", "b"], False), _feed(["a", "c"], True),
                                     _feed(["a"], True)])
def test_reorder_cold_start_flip_or_other_items_is_a_change(after: dict) -> None:
    assert feed_signature(after) != feed_signature(_feed(["a", "b"], True))
