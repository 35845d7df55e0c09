"""Score fusion over catalog rows: min-max weighting and reciprocal rank fusion, each the same float arithmetic
as its per-item formula."""

import numpy as np
import pytest

from pickwise_retriever.fusion import Scores, min_max, rrf, weighted

pytestmark = pytest.mark.unit


def scores(pairs: dict[int, float]) -> Scores:
    return Scores(np.array(list(pairs), dtype=np.int64), np.array(list(pairs.values()), dtype=np.float64))


def as_dict(fused: Scores) -> dict[int, float]:
    return dict(zip(fused.rows.tolist(), fused.values.tolist(), strict=True))


def test_min_max_scales_to_unit_interval() -> None:
    assert as_dict(min_max(scores({1: 2.0, 2: 4.0, 3: 3.0}))) == {1: 0.0, 2: 1.0, 3: 0.5}


def test_min_max_of_equal_scores_is_one_or_zero_when_all_are_zero() -> None:
    assert as_dict(min_max(scores({4: 0.7, 9: 0.7}))) == {4: 1.0, 9: 1.0}
    assert as_dict(min_max(scores({4: 0.0, 9: 0.0}))) == {4: 0.0, 9: 0.0}


def test_min_max_of_nothing_is_nothing() -> None:
    assert as_dict(min_max(Scores.empty())) == {}


def test_weighted_uses_alpha_for_bm25_and_counts_missing_as_zero() -> None:
    fused = as_dict(weighted(scores({1: 10.0, 2: 0.0}), scores({2: 0.9, 3: 0.1}), alpha=0.3))
    assert fused[1] == pytest.approx(0.3)
    assert fused[2] == pytest.approx(0.7)
    assert fused[3] == pytest.approx(0.0)


def test_weighted_is_bit_identical_to_the_per_item_formula() -> None:
    rng = np.random.default_rng(7)
    bm25 = {int(n): float(v) for n, v in zip(rng.choice(500, 80, replace=False), rng.random(80) * 20, strict=True)}
    dense = {int(n): float(v) for n, v in zip(rng.choice(500, 90, replace=False), rng.random(90), strict=True)}
    alpha = 0.37

    def norm(d: dict[int, float]) -> dict[int, float]:
        lo, hi = min(d.values()), max(d.values())
        return {k: (v - lo) / (hi - lo) for k, v in d.items()}

    nb, nd = norm(bm25), norm(dense)
    expected = {k: alpha * nb.get(k, 0.0) + (1 - alpha) * nd.get(k, 0.0) for k in set(nb) | set(nd)}
    assert as_dict(weighted(scores(bm25), scores(dense), alpha)) == expected


def test_rrf_rewards_agreement() -> None:
    fused = as_dict(rrf([np.array([1, 2]), np.array([2, 1]), np.array([2])]))
    assert fused[2] > fused[1]
    assert fused[1] == 1 / 61 + 1 / 62


def test_ranked_keeps_the_given_order_of_equal_scores() -> None:
    assert scores({5: 0.5, 3: 0.9, 8: 0.5, 1: 0.9}).ranked().tolist() == [3, 1, 5, 8]
