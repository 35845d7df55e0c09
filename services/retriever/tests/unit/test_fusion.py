"""Score fusion: min-max weighting and reciprocal rank fusion."""

import pytest

from pickwise_retriever.fusion import min_max, rrf, weighted

pytestmark = pytest.mark.unit


def test_min_max_scales_to_unit_interval() -> None:
    assert min_max({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}


def test_weighted_uses_alpha_for_bm25_and_counts_missing_as_zero() -> None:
    fused = weighted({"a": 10.0, "b": 0.0}, {"b": 0.9, "c": 0.1}, alpha=0.3)
    assert fused["a"] == pytest.approx(0.3)
    assert fused["b"] == pytest.approx(0.7)
    assert fused["c"] == pytest.approx(0.0)


def test_rrf_rewards_agreement() -> None:
    fused = rrf([["a", "b"], ["b", "a"], ["b"]])
    assert fused["b"] > fused["a"]
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
