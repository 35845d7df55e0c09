"""train-ranker's pure parts: labels, the query-level split, NDCG, and a trained model file that the
reranker's loader accepts and that beats the retrieval order on data where the constraints decide."""

from __future__ import annotations

import json
import math
import random

import pytest

from pickwise_common.ranking_features import FEATURE_NAMES
from pickwise_common.schemas import Candidate, Constraints, Item
from pickwise_pipeline import train_ranker as tr

pytestmark = pytest.mark.unit


def candidate(item_id: str, *, brand: str, price: float, fused: float, variants: list[str] | None = None) -> Candidate:
    item = Item(item_id=item_id, title=f"{brand} {item_id}", brand=brand, model=item_id, price_inr=price,
                rating=4.0, price_band="mid", group_id=item_id)
    return Candidate(item=item, fused_score=fused, bm25_score=fused * 10, dense_score=fused,
                     variant_ids=variants or [])


def synthetic(n: int, seed: int = 3) -> list[tr.Judged]:
    rng = random.Random(seed)
    out = []
    for q in range(n):
        brand, cap = rng.choice(["Samsung", "Apple", "Vivo"]), rng.choice([10_000, 20_000, 30_000])
        cands = [candidate(f"q{q}-{i}", brand=rng.choice(["Samsung", "Apple", "Vivo"]),
                           price=rng.uniform(5_000, 50_000), fused=rng.random()) for i in range(25)]
        cands.sort(key=lambda c: -c.fused_score)
        judgments = {c.item.item_id: 2 for c in cands if c.item.brand == brand and c.item.price_inr <= cap}
        out.append(tr.Judged(qid=f"q{q}", query=f"{brand} under {cap}", candidates=cands,
                             parsed=Constraints(brands=[brand], price_max_inr=cap),
                             labels=[tr.candidate_label(c, judgments) for c in cands], judgments=judgments))
    return out


def test_grouped_candidate_takes_the_best_grade_of_its_variants():
    cand = candidate("a", brand="Vivo", price=1, fused=0.1, variants=["a-blue", "a-red"])
    assert tr.candidate_label(cand, {"a-red": 2, "a": 1}) == 2
    assert tr.candidate_label(cand, {"zzz": 2}) == 0


def test_split_is_by_query_disjoint_and_seeded():
    qids = [f"q{i}" for i in range(20)]
    train, val = tr.split_queries(qids, 0.25, seed=1)
    assert len(val) == 5 and not train & val and train | val == set(qids)
    assert tr.split_queries(list(reversed(qids)), 0.25, seed=1) == (train, val)
    assert tr.split_queries(qids, 0.25, seed=2) != (train, val)


def test_ndcg_is_one_for_the_ideal_order_and_lower_otherwise():
    assert tr.ndcg_at_k([2, 1, 0], [2, 1]) == pytest.approx(1.0)
    assert tr.ndcg_at_k([0, 1, 2], [2, 1]) == pytest.approx((1 / math.log2(3) + 3 / 2) / (3 + 1 / math.log2(3)))
    assert tr.ndcg_at_k([0, 0], []) == 0.0


def test_judgments_file_needs_query_and_judgments(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"qid": "a", "query": "x", "judgments": {"i": 1}}) + "\n\n"
                    + json.dumps({"query": "y", "judgments": {}}) + "\n")
    rows = tr.load_judgments(path)
    assert [r["qid"] for r in rows] == ["a", "q3"]
    path.write_text(json.dumps({"qid": "a", "judgments": {}}) + "\n")
    with pytest.raises(ValueError, match="j.jsonl:1"):
        tr.load_judgments(path)


def test_trained_model_beats_retrieval_order_and_loads_in_the_reranker(tmp_path):
    from pickwise_reranker.learned_ranker import load_newest

    queries = synthetic(40)
    train, val = queries[:30], queries[30:]
    booster = tr.train(train, rounds=40)
    before, after = tr.mean_ndcg(val, None), tr.mean_ndcg(val, tr.predict(booster, val))
    assert after > before + 0.2
    tr.save(booster, tmp_path, {"version": "20260101T000000Z", "feature_names": list(FEATURE_NAMES),
                                "validation": {"ndcg@10_ranker": after}})
    model = load_newest(tmp_path)
    assert model is not None and model.version == "20260101T000000Z"
    assert model.score(val[0].candidates, val[0].parsed) == pytest.approx(tr.predict(booster, val[:1])[0])
