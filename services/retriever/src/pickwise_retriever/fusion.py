"""Score fusion: weighted min-max (``alpha * norm(bm25) + (1 - alpha) * norm(dense)``) or RRF (k = 60)."""

from __future__ import annotations


def min_max(scores: dict[str, float]) -> dict[str, float]:
    """Scale to [0, 1] per query; all-equal scores become 1 (each is as good as the best)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return {k: 1.0 if hi > 0 else 0.0 for k in scores}
    return {k: (v - lo) / (hi - lo) for k, v in scores.items()}


def weighted(bm25: dict[str, float], dense: dict[str, float], alpha: float) -> dict[str, float]:
    """An id missing from one list scores 0 there."""
    nb, nd = min_max(bm25), min_max(dense)
    return {k: alpha * nb.get(k, 0.0) + (1 - alpha) * nd.get(k, 0.0) for k in set(nb) | set(nd)}


def rrf(rankings: list[list[str]], k: int = 60) -> dict[str, float]:
    """Reciprocal rank fusion: sum over lists of 1 / (k + rank), rank from 1."""
    out: dict[str, float] = {}
    for ranking in rankings:
        for rank, item_id in enumerate(ranking, start=1):
            out[item_id] = out.get(item_id, 0.0) + 1.0 / (k + rank)
    return out
