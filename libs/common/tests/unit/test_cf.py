"""The CF model library: history weights, the blend, fold-in shape, artifacts that round-trip and version pickup."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pickwise_common import cf
from pickwise_common.cf import BlendWeights, CfModel, blend

pytestmark = pytest.mark.unit


def tiny_model(version: str = "cf-v20260101T000000Z") -> CfModel:
    items = ["or-A", "or-B", "or-C", "or-D"]
    factors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]], dtype=np.float32)
    return CfModel(
        version=version, catalog="retail", trained_at="2026-01-01T00:00:00Z",
        window={"from": None, "until": "2011-10-31"}, item_ids=items, item_factors=factors,
        regularization=0.1, alpha=2.0, metrics={"users": 3}, params={"factors": 2},
        item_idf=np.array([0.5, 1.0, 1.5, 2.0], dtype=np.float32), bm25_average_length=3.0,
        similar={"or-A": [("or-B", 0.99)], "or-C": [("or-D", 0.98)]},
        bought_together={"or-A": [("or-C", 4.0, 0.5, 3)]},
        popularity=[("or-D", 10.0), ("or-C", 5.0), ("or-A", 1.0)],
        popularity_by_category={"mug": [("or-C", 5.0)]},
        item_category={"or-C": "mug"}, item_repeat_rate={"or-A": 0.5}, repeat={"share": 0.4},
        blend_weights=BlendWeights(repeat=1.0, als=0.5, popularity=0.1, bought_together=0.2),
    )


def test_purchase_weight_grows_with_log_quantity_and_click_is_half():
    assert cf.event_cf_weight("purchase", 1) == pytest.approx(1 + math.log(2))
    assert cf.event_cf_weight("purchase", 12) == pytest.approx(1 + math.log(13))
    assert cf.event_cf_weight("click") == 0.5
    assert cf.event_cf_weight("search") == 0.0


def test_blend_ranks_by_weighted_normalised_sources_and_explains():
    ranked = blend({"a": 4.0, "b": 2.0}, {"c": 10.0, "a": 5.0}, {"d": 100.0},
                   BlendWeights(repeat=1.0, als=0.5, popularity=0.1), k=10)
    assert [s.item_id for s in ranked] == ["a", "b", "c", "d"]
    assert ranked[0].score == pytest.approx(1.0 + 0.25)
    assert ranked[0].sources == {"repeat": 1.0, "als": 0.25}
    assert ranked[3].sources == {"popularity": 0.1}


def test_blend_never_returns_excluded_items_and_cuts_at_k():
    ranked = blend({"a": 4.0, "b": 2.0}, {"c": 1.0}, {"d": 1.0}, BlendWeights(als=0.5, history_power=1.0), k=2,
                   exclude={"a"})
    assert [s.item_id for s in ranked] == ["b", "c"]


def test_empty_history_gets_popularity_alone():
    assert tiny_model().recommend({}, k=2) == [("or-D", 1.0), ("or-C", 0.5)]


def test_history_unknown_to_the_model_folds_in_to_none_but_is_still_a_repeat_candidate():
    model = tiny_model()
    assert model.fold_in({"or-ZZZ": 3.0}) is None
    assert [i for i, _ in model.recommend({"or-ZZZ": 3.0}, k=2)] == ["or-ZZZ", "or-D"]


def test_fold_in_solves_the_als_normal_equations():
    model = tiny_model()
    history = {"or-A": 2.0, "or-C": 1.0}
    user = model.fold_in(history)
    idx, conf = model.confidence(history)
    y = model.item_factors.astype(np.float64)
    a = y.T @ y + 0.1 * np.eye(2) + sum((c - 1) * np.outer(y[i], y[i]) for i, c in zip(idx, conf, strict=True))
    b = sum(c * y[i] for i, c in zip(idx, conf, strict=True))
    assert np.allclose(a @ user, b, atol=1e-4)


def test_als_neighbourhood_leads_the_plain_als_list():
    model = tiny_model()
    top = model.als_scores({"or-A": 3.0}, k=2)
    assert [i for i, _ in top] == ["or-A", "or-B"]
    assert [i for i, _ in model.als_scores({"or-A": 3.0}, k=2, exclude={"or-A"})] == ["or-B", "or-D"]


def test_feed_blends_repeat_bought_together_and_popularity():
    model = tiny_model()
    scored = model.recommend_scored({"or-A": 3.0}, k=4, exclude={"or-B"})
    ids = [s.item_id for s in scored]
    assert ids[0] == "or-A" and "or-B" not in ids
    assert "bought_together" in next(s for s in scored if s.item_id == "or-C").sources


def test_save_then_load_round_trips_every_part(tmp_path: Path):
    model = tiny_model()
    directory = cf.save(model, tmp_path)
    assert directory == tmp_path / "cf" / "retail" / "cf-v20260101T000000Z"
    loaded = cf.load(directory)
    assert loaded.item_ids == model.item_ids
    assert np.array_equal(loaded.item_factors, model.item_factors)
    assert {i: [(o, pytest.approx(v)) for o, v in pairs] for i, pairs in loaded.similar.items()} == model.similar
    assert loaded.bought_together == model.bought_together
    assert loaded.popularity == model.popularity
    assert loaded.popularity_by_category == model.popularity_by_category
    assert loaded.blend_weights == model.blend_weights
    assert loaded.window == model.window and loaded.metrics == model.metrics
    assert np.allclose(loaded.fold_in({"or-A": 2.0}), model.fold_in({"or-A": 2.0}))


def test_latest_version_is_the_newest_complete_directory(tmp_path: Path):
    assert cf.latest_version_dir(tmp_path, "retail") is None
    cf.save(tiny_model("cf-v20260101T000000Z"), tmp_path)
    second = tiny_model("cf-v20260101T000000Z")
    path = cf.save(second, tmp_path)  # same second: the next free one
    assert second.version == "cf-v20260101T000001Z" and path.name == second.version
    (tmp_path / "cf" / "retail" / "cf-v20270101T000000Z").mkdir()  # no meta.json: half-written, ignored
    assert cf.latest_version_dir(tmp_path, "retail") == path
    assert cf.load_latest(tmp_path, "retail").version == "cf-v20260101T000001Z"
