"""Evaluation metrics (ranx's definitions) on tiny hand-checked cases, and the variant-group mapping."""

import math

import pytest

from pickwise_pipeline.evaluate import constraint_precision, group_qrels, group_run, score

pytestmark = pytest.mark.unit


def test_perfect_ranking_scores_one() -> None:
    figures = score({"q": {"a": 2, "b": 1}}, {"q": {"a": 2.0, "b": 1.0}})
    assert figures == {"ndcg@10": 1.0, "recall@50": 1.0, "mrr@10": 1.0}


def test_hand_checked_ndcg_mrr_recall() -> None:
    # ranking: x (irrelevant), a (grade 2); b (grade 1) not retrieved
    figures = score({"q": {"a": 2, "b": 1}}, {"q": {"x": 2.0, "a": 1.0}})
    # ranx's ndcg uses the grade itself as the gain (Jarvelin & Kekalainen), not 2^grade - 1
    dcg = 2 / math.log2(3)                                   # a at rank 2
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert figures["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-4)
    assert figures["mrr@10"] == pytest.approx(0.5)
    assert figures["recall@50"] == pytest.approx(0.5)


def test_groups_take_the_best_grade_and_count_once() -> None:
    group_of = {"a1": "A", "a2": "A", "b1": "B"}
    assert group_qrels({"a1": 1, "a2": 2, "b1": 1}, group_of) == {"A": 2, "B": 1}
    assert group_run(["a2", "a1", "b1"], group_of) == {"A": 3.0, "B": 2.0}


def test_constraint_precision_counts_results_meeting_every_constraint() -> None:
    results = [[{"brands": True, "price_max_inr": True}, {"brands": True, "price_max_inr": False}], [{}]]
    assert constraint_precision(results) == pytest.approx(2 / 3, abs=1e-4)


def test_figures_per_query_kind() -> None:
    from pickwise_pipeline.evaluate import by_kind

    queries = [{"qid": "a", "kind": "under"}, {"qid": "b", "kind": "under"}, {"qid": "c", "kind": "model"},
               {"qid": "d"}]
    qrels = {"a": {"x": 2}, "b": {"y": 1}, "c": {"z": 2}, "d": {"w": 0}}
    run = {"a": {"x": 2.0, "q": 1.0}, "b": {"q": 2.0, "y": 1.0}, "c": {"q": 1.0}, "d": {"w": 1.0}}
    satisfied = {"a": [{"price_max_inr": True}], "b": [{"price_max_inr": False}], "c": [], "d": []}
    kinds = by_kind(queries, qrels, run, satisfied)
    assert list(kinds) == ["model", "under", "unlabelled"]
    assert kinds["under"]["queries"] == 2
    assert kinds["under"]["mrr@10"] == 0.75  # first hit at rank 1 and at rank 2
    assert kinds["under"]["constraint_precision@10"] == 0.5
    assert kinds["model"]["ndcg@10"] == 0.0
    assert "ndcg@10" not in kinds["unlabelled"]  # no relevant judgment: nothing to score


def test_a_query_without_results_counts_as_zero_and_ungraded_queries_are_left_out() -> None:
    figures = score({"q": {"a": 1}, "r": {"b": 3}, "s": {"c": 0}}, {"q": {"a": 1.0}})
    assert figures == {"ndcg@10": 0.5, "recall@50": 0.5, "mrr@10": 0.5}
