"""Lexicographic ordering of catalog rows by parallel key arrays, and the first ``m`` of that order without
sorting the rest: a filtered set of 50k items needs its first few dozen in order (and its facets as a set), so
the order is found by narrowing on one key at a time (``np.partition``) and sorting only what is left."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def first(rows: np.ndarray, keys: Sequence[np.ndarray], m: int) -> np.ndarray:
    """The first ``m`` of ``rows`` ordered by ``keys`` (parallel to ``rows``, the primary key first) and then
    by row number: exactly ``sorted(rows, key=lambda n: (*keys_of(n), n))[:m]``. Keys must hold no NaN."""
    if m <= 0 or not rows.size:
        return rows[:0]
    if m < rows.size:
        pick = _smallest(rows, keys, m)
        rows, keys = rows[pick], [key[pick] for key in keys]
    return rows[np.lexsort((rows, *reversed(keys)))]


def _smallest(rows: np.ndarray, keys: Sequence[np.ndarray], m: int) -> np.ndarray:
    """Positions of the ``m`` smallest rows in that order, unordered (``m`` < ``rows.size``)."""
    chosen: list[np.ndarray] = []
    tied = np.arange(rows.size)   # rows equal on every key so far, of which ``m`` more are wanted
    for key in [*keys, rows]:
        if tied.size <= m:
            break
        values = key[tied]
        threshold = np.partition(values, m - 1)[m - 1]
        below = values < threshold
        chosen.append(tied[below])
        m -= int(np.count_nonzero(below))
        tied = tied[values == threshold]
    chosen.append(tied)
    return np.concatenate(chosen)
