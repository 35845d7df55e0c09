"""train-cf's pieces: fold-in is ALS's own user solve, bought-together lift/NPMI, popularity, a saved model."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pickwise_common import cf
from pickwise_pipeline.train_cf import (
    Interaction,
    TrainParams,
    bm25_stats,
    bought_together,
    fit_als,
    history_matrix,
    popularity,
    train,
)

pytestmark = pytest.mark.unit

T0 = datetime(2011, 1, 1, tzinfo=UTC)


def synthetic(n_users: int = 40, n_items: int = 15, seed: int = 3) -> list[Interaction]:
    rng = np.random.default_rng(seed)
    out = []
    for u in range(n_users):
        for j in rng.choice(n_items, size=4, replace=False):
            out.append(Interaction(str(u), f"or-{j}", "purchase", int(rng.integers(1, 6)), f"inv{u}-{j % 2}",
                                   T0 + timedelta(days=int(rng.integers(0, 60)))))
    return out


def test_fold_in_equals_implicit_recalculate_user():
    from implicit.cpu.als import AlternatingLeastSquares

    interactions = synthetic()
    matrix = history_matrix(interactions)
    params = TrainParams(factors=6, iterations=4, regularization=0.1, alpha=2.0)
    _users, item_factors, weighted = fit_als(matrix, params)
    idf, average = bm25_stats(matrix.weights)
    model = cf.CfModel(version="cf-v20260101T000000Z", catalog="retail", trained_at="", window={},
                       item_ids=matrix.items, item_factors=item_factors, regularization=0.1, alpha=2.0,
                       item_idf=idf, bm25_average_length=average)
    als = AlternatingLeastSquares(factors=6, regularization=0.1, alpha=2.0)
    als.item_factors = item_factors
    for u in (0, 7, 21):
        row = matrix.weights[u]
        history = {matrix.items[j]: float(w) for j, w in zip(row.indices, row.data, strict=True)}
        expected = np.asarray(als.recalculate_user(u, weighted[u])).ravel()
        assert np.allclose(model.fold_in(history), expected, atol=1e-4)


def test_bought_together_lift_and_npmi_on_hand_made_baskets():
    baskets = {"1": {"a", "b"}, "2": {"a", "b"}, "3": {"a", "c"}, "4": {"b"}}
    pairs = bought_together(baskets, k=5, min_support=1)
    (c, lift_c, npmi_c, sup_c), (b, lift_b, npmi_b, sup_b) = pairs["a"]
    assert (c, b, sup_c, sup_b) == ("c", "b", 1, 2)
    assert lift_c == pytest.approx(0.25 / (0.75 * 0.25), abs=1e-4)
    assert lift_b == pytest.approx(0.5 / (0.75 * 0.75), abs=1e-4)
    assert npmi_c == pytest.approx(math.log(4 / 3) / -math.log(0.25), abs=1e-4)
    assert npmi_b == pytest.approx(math.log(8 / 9) / -math.log(0.5), abs=1e-4)


def test_bought_together_drops_pairs_below_minimum_support():
    baskets = {"1": {"a", "b"}, "2": {"a", "b"}, "3": {"a", "c"}, "4": {"b"}}
    assert bought_together(baskets, k=5, min_support=2) == {"a": [("b", 0.8889, pytest.approx(-0.16993, abs=1e-4),
                                                                   2)],
                                                             "b": [("a", 0.8889, pytest.approx(-0.16993, abs=1e-4),
                                                                   2)]}


def test_popularity_counts_each_customer_once_and_prefers_recent_votes():
    until = T0 + timedelta(days=28)
    events = [Interaction("u1", "old", "purchase", 1000, "i1", T0),
              Interaction("u2", "new", "purchase", 1, "i2", until),
              Interaction("u1", "old", "purchase", 1000, "i3", T0)]
    ranked, by_category = popularity(events, until, 14.0, {"new": "mugs"}, top=10, category_top=10)
    assert [i for i, _ in ranked] == ["new", "old"]
    assert ranked[1][1] == pytest.approx(0.25)
    assert by_category == {"mugs": [("new", 1.0)]}


def test_trained_model_round_trips_and_recommends(tmp_path):
    interactions = synthetic()
    model = train(interactions, "retail", params=TrainParams(factors=4, iterations=3, together_min_support=1),
                  window={"from": None, "until": "2011-03-01"})
    loaded = cf.load(cf.save(model, tmp_path))
    assert loaded.window == {"from": None, "until": "2011-03-01"}
    assert loaded.metrics["users"] == 40 and loaded.factors == 4
    assert len(loaded.similar_items("or-1", 5)) == 5 and "or-1" not in dict(loaded.similar_items("or-1", 5))
    feed = loaded.recommend({"or-1": 2.0, "or-2": 1.0}, k=10)
    assert len(feed) == 10 and feed[0][0] in {"or-1", "or-2"}
    assert 0.0 <= loaded.repeat["repeated_pair_share"] <= 1.0


def test_the_model_does_not_depend_on_the_order_events_arrive_in():
    interactions = synthetic()
    params = TrainParams(factors=4, iterations=3, together_min_support=1)
    forward = train(interactions, "retail", params=params)
    backward = train(list(reversed(interactions)), "retail", params=params)
    assert forward.item_ids == backward.item_ids == sorted(forward.item_ids)
    assert np.allclose(forward.item_factors, backward.item_factors, atol=1e-5)
