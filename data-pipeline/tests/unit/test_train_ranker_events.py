"""train-ranker --from-events, the pure parts: joining impressions to events, groups, the shopper split, IPW and
true-utility NDCG, and LightGBM honouring the per-row IPW weights."""

from __future__ import annotations

import json
import random

import pytest

from pickwise_common.schemas import Candidate, Constraints, Item
from pickwise_pipeline import propensity
from pickwise_pipeline.shoppers import Shopper
from pickwise_pipeline.train_ranker_events import (
    Group,
    Logged,
    expected_clicks,
    explored_pages,
    heldout_shopper,
    ipw_ndcg,
    join_events,
    make_group,
    train,
    true_ndcg,
)

pytestmark = pytest.mark.unit

FLAT = propensity.Propensities((1.0,) * 10, (), 0)


def cand(item_id: str, *, price: float = 10_000.0, brand: str = "Samsung", variants: tuple[str, ...] = (),
         fused: float = 1.0) -> Candidate:
    item = Item(item_id=item_id, title=item_id, brand=brand, price_inr=price, ram_gb=6.0, storage_gb=128.0,
                rating=4.5)
    return Candidate(item=item, variant_ids=list(variants), fused_score=fused)


def test_join_keeps_one_impression_per_request_and_the_best_label_per_item():
    impressions = [
        {"request_id": "r1", "user_id": "u1", "query": "q", "explore": json.dumps({"pair": 0, "swapped": 1}),
         "items": json.dumps([{"item_id": "a", "position": 0}, {"item_id": "b", "position": 1}])},
        {"request_id": "r1", "user_id": "u1", "query": "q", "items": []},  # a duplicate delivery
    ]
    events = [{"request_id": "r1", "item_id": "b", "type": "click"},
              {"request_id": "r1", "item_id": "b", "type": "purchase"},
              {"request_id": "r1", "item_id": "z", "type": "click"},  # not shown by r1: ignored
              {"request_id": "r9", "item_id": "a", "type": "click"}]  # no impression: ignored
    [logged] = join_events(impressions, events)
    assert logged.positions == {"a": 0, "b": 1} and logged.labels == {"b": 3}
    assert logged.explore == {"pair": 0, "swapped": 1}


def test_explored_pages_carry_clicked_positions_and_the_first_purchase():
    logged = [Logged("r1", "u", "q", {"a": 0, "b": 1, "c": 2}, {"b": 1, "c": 3}, {"pair": 1, "swapped": 0}),
              Logged("r2", "u", "q", {"a": 0}, {"a": 1}, None)]
    [page] = explored_pages(logged)
    assert page == propensity.ExploredPage(1, frozenset({1, 2}), 2)


def test_group_rows_follow_shown_positions_and_match_colour_variants():
    candidates = [cand("x"), cand("a", variants=("a-red",)), cand("b")]
    logged = Logged("r", "u", "q", {"b": 0, "a-red": 1, "gone": 2}, {"a-red": 2})
    group = make_group(logged, candidates, Constraints())
    assert group.rows == [2, 1] and group.positions == [0, 1] and group.labels == [0, 2]


def test_shopper_split_is_stable_and_near_the_fraction():
    users = [f"sim-7-{n}" for n in range(4000)]
    held = [u for u in users if heldout_shopper(u, 0.25, 13)]
    assert held == [u for u in users if heldout_shopper(u, 0.25, 13)]
    assert 0.22 < len(held) / len(users) < 0.28


def group_of(labels: list[int], positions: list[int]) -> Group:
    logged = Logged("r", "u", "q", {str(p): p for p in positions})
    return Group(logged, [], Constraints(), list(range(len(labels))), positions, labels)


def test_ipw_ndcg_is_one_when_the_clicked_item_is_ranked_first():
    group = group_of([0, 0, 1], [0, 1, 2])
    assert ipw_ndcg([group], [[0.0, 0.0, 1.0]], FLAT) == 1.0
    assert ipw_ndcg([group], [[3.0, 2.0, 1.0]], FLAT) == pytest.approx(0.5)


def test_ipw_ndcg_weights_a_click_low_on_the_page_more():
    props = propensity.Propensities((1.0, 0.5, 0.25) + (0.2,) * 7, (), 0)
    group = group_of([1, 0, 1], [0, 1, 2])
    # the click at position 2 weighs 4, the one at 0 weighs 1: putting position 2 first wins
    assert ipw_ndcg([group], [[1.0, 0.0, 2.0]], props) > ipw_ndcg([group], [[2.0, 0.0, 1.0]], props)


def test_ipw_ndcg_skips_impressions_without_clicks():
    assert ipw_ndcg([group_of([0, 0], [0, 1])], [[1.0, 0.0]], FLAT) == 0.0


def test_true_ndcg_rewards_ordering_by_the_shoppers_utility():
    shopper = Shopper("u", ("Samsung",), 0.9, 15_000.0, 3.0, None, None, 0.0, "camera")
    candidates = [cand("off", brand="Nokia"), cand("over", price=30_000.0), cand("fit", price=14_500.0)]
    assert true_ndcg(candidates, [0.0, 0.0, 1.0], shopper, {}) == 1.0
    assert true_ndcg(candidates, [1.0, 0.5, 0.0], shopper, {}) < 0.7


def test_expected_clicks_are_higher_with_the_useful_item_on_top():
    shopper = Shopper("u", ("Samsung",), 0.9, 15_000.0, 3.0, None, None, 0.0, "camera")
    candidates = [cand("off", brand="Nokia"), cand("over", price=30_000.0), cand("fit", price=14_500.0)]
    assert expected_clicks(candidates, [0.0, 0.0, 1.0], shopper, {}) > expected_clicks(candidates, [1.0, 0.5, 0.0],
                                                                                        shopper, {})


def conflicting_groups(rng: random.Random, n: int) -> list[Group]:
    """Half the pages: the click went to the cheapest item, shown at position 7; the other half: to the item with
    the highest fused score, shown at position 0. Which signal wins depends on how the clicks are weighted."""
    groups = []
    for g in range(n):
        candidates = [cand(f"g{g}-{i}", price=rng.uniform(5_000, 40_000), fused=rng.random()) for i in range(8)]
        cheap = g % 2 == 0
        values = [-(c.item.price_inr or 0.0) if cheap else c.fused_score for c in candidates]
        target = max(range(8), key=values.__getitem__)
        others = [i for i in range(8) if i != target]
        order = (others[:7] + [target]) if cheap else ([target] + others)
        logged = Logged(f"r{g}", "u", "q", {candidates[i].item.item_id: pos for pos, i in enumerate(order)},
                        {candidates[target].item.item_id: 1})
        groups.append(make_group(logged, candidates, Constraints()))
    return groups


def test_lightgbm_lambdarank_honours_the_ipw_row_weights():
    groups = conflicting_groups(random.Random(3), 200)
    params = {"objective": "lambdarank", "verbosity": -1, "num_threads": 1, "deterministic": True, "seed": 1,
              "min_data_in_leaf": 5}
    steep_curve = propensity.Propensities((1.0, 0.5, 0.3, 0.2, 0.1, 0.08, 0.06, 0.05, 0.05, 0.05), (), 0)

    def price_share(booster: object) -> float:
        gains = dict(zip(booster.feature_name(), booster.feature_importance("gain"), strict=True))  # type: ignore[attr-defined]
        price = sum(v for k, v in gains.items() if "price" in k)
        return price / (price + sum(v for k, v in gains.items() if "fused" in k or "retrieval" in k))

    flat = train(groups, FLAT, rounds=20, clip=0.05, params=params)
    steep = train(groups, steep_curve, rounds=20, clip=0.05, params=params)
    # the cheap-item clicks were seen at position 7 (propensity 0.05): weighted 20x, price dominates
    assert price_share(steep) > price_share(flat) + 0.1


def test_training_without_any_click_says_so():
    with pytest.raises(ValueError, match="no impression with a click"):
        train([group_of([0, 0], [0, 1])], FLAT, rounds=5, clip=0.05)
