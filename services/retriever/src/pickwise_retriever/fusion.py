"""Score fusion: weighted min-max (``alpha * norm(bm25) + (1 - alpha) * norm(dense)``) or RRF (k = 60).

Scores are ``Scores``: catalog row numbers and their scores as parallel numpy arrays, so fusing a pool of any
size is a few array operations (the same float operations, in the same order, as the per-item formulas)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Scores(NamedTuple):
    """``values[i]`` is the score of catalog row ``rows[i]``; rows are distinct."""

    rows: np.ndarray
    values: np.ndarray

    @classmethod
    def empty(cls) -> Scores:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))

    def pairs(self) -> list[tuple[int, float]]:
        """(row, score) in the arrays' order."""
        return list(zip(self.rows.tolist(), self.values.tolist(), strict=True))

    def ranked(self) -> np.ndarray:
        """The rows best first; equal scores keep their order in ``rows``."""
        return self.rows[np.argsort(-self.values, kind="stable")]


def min_max(scores: Scores) -> Scores:
    """Scale to [0, 1] per query; all-equal scores become 1 (each is as good as the best), or 0 when all are 0."""
    values = scores.values
    if not values.size:
        return scores
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return Scores(scores.rows, np.full(values.size, 1.0 if hi > 0 else 0.0))
    return Scores(scores.rows, (values - lo) / (hi - lo))


def weighted(bm25: Scores, dense: Scores, alpha: float) -> Scores:
    """A row missing from one list scores 0 there."""
    rows = np.union1d(bm25.rows, dense.rows)
    nb, nd = _spread(rows, min_max(bm25)), _spread(rows, min_max(dense))
    return Scores(rows, alpha * nb + (1 - alpha) * nd)


def rrf(rankings: list[np.ndarray], k: int = 60) -> Scores:
    """Reciprocal rank fusion of rankings (rows best first): sum over lists of 1 / (k + rank), rank from 1."""
    rows = np.unique(np.concatenate([np.asarray(r, dtype=np.int64) for r in rankings])) if rankings \
        else np.empty(0, dtype=np.int64)
    total = np.zeros(rows.size)
    for ranking in rankings:
        ranking = np.asarray(ranking, dtype=np.int64)
        total[np.searchsorted(rows, ranking)] += 1.0 / (k + np.arange(1, ranking.size + 1))
    return Scores(rows, total)


def _spread(rows: np.ndarray, scores: Scores) -> np.ndarray:
    """``scores`` laid out over ``rows`` (a sorted superset of its rows), 0 elsewhere."""
    out = np.zeros(rows.size)
    out[np.searchsorted(rows, scores.rows)] = scores.values
    return out
