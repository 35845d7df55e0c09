"""evaluate-cf's metrics on hand-computed cases, the split's rules and the feed parser of the gateway mode."""

from __future__ import annotations

import math

import pytest

from pickwise_pipeline.evaluate_cf import (
    coverage,
    feed_item_ids,
    hit_at_k,
    make_split,
    ndcg_at_k,
    novelty,
    recall_at_k,
    score_lists,
)

pytestmark = pytest.mark.unit


def test_recall_ndcg_hit_on_a_hand_computed_list():
    ranked, relevant = ["a", "b", "c", "d"], {"b", "d", "e"}
    assert recall_at_k(ranked, relevant, 3) == pytest.approx(1 / 3)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 3) == pytest.approx((1 / math.log2(3)) / ideal)
    assert ndcg_at_k(["b", "d", "e"], relevant, 3) == pytest.approx(1.0)
    assert hit_at_k(ranked, relevant, 1) == 0.0 and hit_at_k(ranked, relevant, 2) == 1.0


def test_coverage_and_novelty():
    assert coverage([["a", "b"], ["b", "c"], ["z"]], catalog_size=10, k=2) == pytest.approx(0.4)
    assert novelty([["a", "b"]], {"a": 0.5, "b": 0.25}, k=2) == pytest.approx(1.5)


def test_score_lists_averages_over_users_with_relevant_items():
    scores = score_lists({"u1": ["a"], "u2": ["x"], "u3": ["a"]}, {"u1": {"a"}, "u2": {"a", "b"}}, 1, 4, {"a": 0.5})
    assert scores["users"] == 2 and scores["recall"] == pytest.approx(0.5) and scores["hit_rate"] == 0.5


def test_split_keeps_test_cancellations_out_of_train_and_relevant_is_distinct_items():
    def row(inv, code, qty, date, customer="1.0"):
        return [inv, code, "X", str(qty), f"{date} 10:00:00", "1.0", customer, "UK"]

    rows = [row("1", "22423", 5, "2011-10-30"), row("C2", "22423", -5, "2011-11-02"),
            row("3", "22423", 1, "2011-11-03"), row("3", "22423", 2, "2011-11-03"), row("4", "85123A", 1, "2011-11-04"),
            row("5", "85123A", 1, "2011-11-05", customer="2.0")]
    split = make_split(rows, "2011-10-31", "2011-11-01", "2011-12-09")
    assert [(e.user_id, e.quantity) for e in split.train] == [("1", 5)]
    assert split.relevant == {"1": {"or-22423", "or-85123A"}, "2": {"or-85123A"}}
    assert split.returning == ["1"] and split.new == ["2"]


def test_feed_parser_reads_item_ids_in_order():
    body = {"items": [{"item_id": "or-1", "score": 2}, {"item": {"item_id": "or-2"}}, "or-3"], "cold_start": False}
    assert feed_item_ids(body) == ["or-1", "or-2", "or-3"]


def test_tuning_never_returns_weights_worse_than_its_start_on_validation():
    from pickwise_common import cf
    from pickwise_pipeline.evaluate_cf import tune_blend
    from pickwise_pipeline.train_cf import TrainParams, train

    def row(inv, code, date, customer):
        return [inv, code, "X", "1", f"{date} 10:00:00", "1.0", f"{customer}.0", "UK"]

    rows = []
    for c in range(12):
        for j in range(4):
            rows.append(row(f"{c}{j}", f"{10000 + (c + j) % 7}", "2011-09-0" + str(1 + j), c))
        rows.append(row(f"{c}9", f"{10000 + c % 7}", "2011-10-05", c))
        rows.append(row(f"{c}8", f"{10000 + (c + 5) % 7}", "2011-10-06", c))
    split = make_split(rows, "2011-09-30", "2011-10-01", "2011-10-31")
    model = train(split.train, "retail", params=TrainParams(factors=3, iterations=3, together_min_support=1))
    start = cf.BlendWeights(als=0.0, popularity=0.0, bought_together=0.0, repeat_rate_power=0.0, history_power=1.0)
    model.blend_weights = start
    best, trace = tune_blend(model, split, k=3, rounds=1)
    assert len(trace) > 1
    chosen = next(t for t in trace if t["weights"] == best.as_dict())
    assert chosen["recall_plus_ndcg"] == max(t["recall_plus_ndcg"] for t in trace) >= trace[0]["recall_plus_ndcg"]
