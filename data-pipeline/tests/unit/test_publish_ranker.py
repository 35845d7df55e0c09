"""train-ranker's offline gate without a registry (decision 1003): where the model files go, the champion
re-scored on the candidate's own validation queries, and never a model below retrieval order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pickwise_common.ranking_features import FEATURE_NAMES
from pickwise_pipeline import train_ranker as tr
from pickwise_pipeline.model_registry import publish_ranker, ranker_ndcg

pytestmark = pytest.mark.unit

def _queries(n: int, seed: int) -> list[tr.Judged]:
    import random

    from pickwise_common.schemas import Candidate, Constraints, Item

    rng = random.Random(seed)
    out = []
    for q in range(n):
        brand, cap = rng.choice(["Samsung", "Apple", "Vivo"]), rng.choice([10_000, 20_000, 30_000])
        cands = []
        for i in range(25):
            b = rng.choice(["Samsung", "Apple", "Vivo"])
            item = Item(item_id=f"q{q}-{i}", title=f"{b} {i}", brand=b, model=str(i),
                        price_inr=rng.uniform(5_000, 50_000), rating=4.0, price_band="mid", group_id=f"q{q}-{i}")
            fused = rng.random()
            cands.append(Candidate(item=item, fused_score=fused, bm25_score=fused * 10, dense_score=fused))
        cands.sort(key=lambda c: -c.fused_score)
        judgments = {c.item.item_id: 2 for c in cands if c.item.brand == brand and c.item.price_inr <= cap}
        out.append(tr.Judged(qid=f"q{q}", query=f"{brand} under {cap}", candidates=cands,
                             parsed=Constraints(brands=[brand], price_max_inr=cap),
                             labels=[tr.candidate_label(c, judgments) for c in cands], judgments=judgments))
    return out


def inverted(queries: list[tr.Judged]) -> list[tr.Judged]:
    """The same queries graded the wrong way round: a model learnt from them ranks the relevant items last."""
    return [dataclasses.replace(q, labels=[2 - label for label in q.labels]) for q in queries]


def metadata(version: str) -> dict:
    return {"version": version, "feature_names": list(FEATURE_NAMES)}


def test_first_model_above_retrieval_order_is_served_from_out_dir(tmp_path: Path) -> None:
    queries = _queries(40, 3)
    booster = tr.train(queries[:30], rounds=40)

    path, gate = publish_ranker(booster, metadata("20260101T000000Z"), queries[30:], tmp_path, registry=None,
                                min_gain=0.001)

    assert gate["action"] == "promoted" and gate["reason"] == "first version"
    assert path == tmp_path / "ranker-v20260101T000000Z.txt" and path.with_suffix(".json").exists()


def test_model_below_retrieval_order_is_set_aside_even_without_a_champion(tmp_path: Path) -> None:
    queries = _queries(40, 3)
    booster = tr.train(inverted(queries[:30]), rounds=40)
    assert tr.mean_ndcg(queries[30:], tr.predict(booster, queries[30:])) < tr.mean_ndcg(queries[30:], None)

    path, gate = publish_ranker(booster, metadata("20260101T000000Z"), queries[30:], tmp_path, registry=None,
                                min_gain=0.0)

    assert gate["action"] == "rejected" and "retrieval order" in gate["reason"]
    assert path.parent == tmp_path / "rejected"
    assert list(tmp_path.glob("ranker-v*.txt")) == []  # nothing a reranker would load


def test_the_champion_is_rescored_on_the_candidates_validation_queries(tmp_path: Path) -> None:
    queries = _queries(40, 3)
    validation = queries[30:]
    strong = tr.train(queries[:30], rounds=40)
    publish_ranker(strong, metadata("20260101T000000Z"), validation, tmp_path, registry=None, min_gain=0.001)
    weak = tr.train(queries[:30], rounds=1)

    path, gate = publish_ranker(weak, metadata("20260102T000000Z"), validation, tmp_path, registry=None,
                                min_gain=0.001)

    assert gate["champion"] == pytest.approx(ranker_ndcg(tmp_path / "ranker-v20260101T000000Z.txt", validation))
    assert gate["champion"] == pytest.approx(tr.mean_ndcg(validation, tr.predict(strong, validation)))
    assert gate["action"] == "rejected" and path.parent == tmp_path / "rejected"
    assert sorted(p.name for p in tmp_path.glob("ranker-v*.txt")) == ["ranker-v20260101T000000Z.txt"]


def test_an_unreachable_registry_keeps_the_model_aside_unregistered(tmp_path: Path) -> None:
    from pickwise_common.launcher.processes import free_port
    from pickwise_common.registry import Registry, RegistrySettings

    queries = _queries(40, 3)
    booster = tr.train(queries[:30], rounds=40)
    down = Registry(RegistrySettings(mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}", registry_max_retries=0,
                                     model_cache_dir=tmp_path / "cache"))

    path, gate = publish_ranker(booster, metadata("20260101T000000Z"), queries[30:], tmp_path / "models",
                                registry=down, min_gain=0.001)

    assert gate["action"] == "unregistered"
    assert path == tmp_path / "models" / "unregistered" / "ranker-v20260101T000000Z.txt" and path.exists()
