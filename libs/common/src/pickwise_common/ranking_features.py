"""Features of the learned ranker, one row per candidate: the same pure function serves training
(``pickwise-pipeline train-ranker``) and serving (the reranker), so the two can never drift apart.

A row depends on the candidate, the other candidates of the same query (per-query normalisation, ranks)
and the parsed constraints; whether each constraint holds comes from the shared constraint model
(``pickwise_common.constraints``), the same verdict the retriever filters with. Missing values are ``nan``
(LightGBM treats them as missing); a constraint the query did not set is ``nan`` too, so "not asked" differs
from "violated" (0) and "holds" (1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pickwise_common.constraints import FEATURES, feature_verdicts
from pickwise_common.schemas import Candidate, Constraints, Item

NAN = float("nan")

SORT_INTENTS = ("relevance", "price_asc", "price_desc", "rating_desc")
BAND_ORDINAL = {"budget": 0.0, "mid": 1.0, "premium": 2.0, "flagship": 3.0}

FEATURE_NAMES: tuple[str, ...] = (
    "bm25", "bm25_norm", "dense", "dense_norm", "fused", "fused_norm", "retrieval_rank_frac",
    *(f"sat_{dim}" for dim in FEATURES),
    "sat_fraction", "sat_all", "n_constraints",
    "rating", "rating_norm", "discount_pct", "log_price", "price_pct_in_candidates", "price_pos_in_range",
    "price_band", "popularity", "popularity_norm",
    *(f"sort_{intent}" for intent in SORT_INTENTS),
)


def _minmax(values: Sequence[float | None]) -> list[float]:
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return [NAN] * len(values)
    lo, hi = min(present), max(present)
    span = hi - lo
    out = []
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(NAN)
        else:
            out.append(1.0 if span == 0 else (v - lo) / span)
    return out


def _price(item: Item) -> float:
    """The item's price in its catalog's currency (features compare prices within one query, one catalog)."""
    return float(item.price or 0.0)


def _num(value: float | None) -> float:
    return NAN if value is None else float(value)


def extract_features(candidates: Sequence[Candidate], parsed: Constraints | None) -> list[list[float]]:
    """One row of ``len(FEATURE_NAMES)`` floats per candidate, in the order given (retrieval order)."""
    parsed = parsed or Constraints()
    n = len(candidates)
    if n == 0:
        return []
    bm25 = [c.bm25_score for c in candidates]
    dense = [c.dense_score for c in candidates]
    fused = [c.fused_score for c in candidates]
    ratings = [c.item.rating for c in candidates]
    pops = [c.popularity for c in candidates]
    bm25_n, dense_n, fused_n = _minmax(bm25), _minmax(dense), _minmax(fused)
    rating_n, pop_n = _minmax(ratings), _minmax(pops)
    prices = [_price(c.item) for c in candidates]
    order = sorted(range(n), key=lambda i: prices[i])
    price_pct = [0.0] * n
    for position, index in enumerate(order):
        price_pct[index] = position / (n - 1) if n > 1 else 0.5
    lo, hi = parsed.price_min_inr, parsed.price_max_inr
    n_constraints = 0.0
    rows: list[list[float]] = []
    for i, cand in enumerate(candidates):
        sat = feature_verdicts(cand.item, parsed)
        asked = [v for v in sat.values() if v is not None]
        n_constraints = float(len(asked))
        if lo is not None and hi is not None and hi > lo:
            pos_in_range = (prices[i] - lo) / (hi - lo)
        elif hi is not None and hi > 0:
            pos_in_range = prices[i] / hi
        elif lo is not None and lo > 0:
            pos_in_range = prices[i] / lo
        else:
            pos_in_range = NAN
        row = [
            _num(bm25[i]), bm25_n[i], _num(dense[i]), dense_n[i], float(fused[i]), fused_n[i],
            i / (n - 1) if n > 1 else 0.0,
            *(NAN if sat[dim] is None else float(sat[dim]) for dim in FEATURES),
            (sum(asked) / len(asked)) if asked else NAN,
            float(all(asked)) if asked else NAN,
            n_constraints,
            _num(cand.item.rating), rating_n[i], _num(cand.item.discount_pct),
            math.log1p(max(prices[i], 0.0)), price_pct[i], pos_in_range,
            BAND_ORDINAL.get(cand.item.price_band or "", NAN),
            _num(pops[i]), pop_n[i],
            *(float(parsed.sort == intent) for intent in SORT_INTENTS),
        ]
        rows.append(row)
    return rows
