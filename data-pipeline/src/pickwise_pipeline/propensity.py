"""Position-bias propensities from RandPair exploration logs, and the inverse-propensity weights they give
(decision 1004b).

For a share of search responses the gateway swapped positions k and k+1 with probability 1/2 (impression
``explore = {"pair": k, "swapped": 0|1}``). Over those impressions the same items sit at k and at k+1 equally
often, so clicks(k+1) / clicks(k) estimates examination(k+1) / examination(k) whatever the items' relevance.
Chained from p(0) = 1 this gives the examination curve.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_POSITIONS = 10
PSEUDO_CLICKS = 5.0  # prior clicks added to both sides of a ratio (pulls a thin pair towards "no bias")
RATIO_MIN = 0.05
PROPENSITY_CLIP = 0.05  # weights are at most 1 / 0.05 = 20


@dataclass(frozen=True)
class ExploredPage:
    """One explored impression: the randomised pair, the positions that were clicked and the first position
    bought from (a purchase ends a shopper's page, decision 1007)."""

    pair: int
    clicked_positions: frozenset[int]
    first_purchase: int | None = None


@dataclass(frozen=True)
class Propensities:
    values: tuple[float, ...]  # p(0) = 1, p(1), ... p(positions - 1)
    pair_clicks: tuple[tuple[int, int], ...]  # per pair k: (clicks at k, clicks at k+1)
    pages: int

    def at(self, position: int) -> float:
        return self.values[min(position, len(self.values) - 1)]


def estimate(pages: Iterable[ExploredPage], positions: int = DEFAULT_POSITIONS, *,
             pseudo_clicks: float = PSEUDO_CLICKS, ratio_min: float = RATIO_MIN) -> Propensities:
    """p(k+1) / p(k) = (clicks at k+1 + c) / (clicks at k + c) over the pages whose pair was k, clipped to
    [ratio_min, 1] (examination does not rise down the page), chained from p(0) = 1. A page whose shopper bought
    above the pair never looked at it and is left out (the items above the pair do not depend on the swap, so
    this drops no information about it)."""
    upper = [0] * (positions - 1)
    lower = [0] * (positions - 1)
    count = 0
    for page in pages:
        count += 1
        if not 0 <= page.pair < positions - 1:
            continue
        if page.first_purchase is not None and page.first_purchase < page.pair:
            continue
        upper[page.pair] += page.pair in page.clicked_positions
        lower[page.pair] += (page.pair + 1) in page.clicked_positions
    values = [1.0]
    for k in range(positions - 1):
        denominator = upper[k] + pseudo_clicks
        ratio = (lower[k] + pseudo_clicks) / denominator if denominator > 0 else 1.0
        values.append(values[-1] * min(1.0, max(ratio_min, ratio)))
    return Propensities(tuple(round(v, 6) for v in values), tuple(zip(upper, lower, strict=True)), count)


def ipw_weight(position: int, propensities: Propensities | Sequence[float], clip: float = PROPENSITY_CLIP) -> float:
    """1 / max(p(position), clip): the weight of a click observed at ``position``."""
    values = propensities.values if isinstance(propensities, Propensities) else tuple(propensities)
    p = values[min(position, len(values) - 1)]
    return 1.0 / max(p, clip)


def group_weights(labels: Sequence[int], positions: Sequence[int], propensities: Propensities | Sequence[float],
                  clip: float = PROPENSITY_CLIP) -> list[float]:
    """Per-row weights of one impression for LightGBM's lambdarank, which multiplies each row's gradient by its
    weight: a clicked row gets 1 / p(its position); an unclicked row the mean weight of the clicked rows, so with
    one click (the usual page) every pair is weighted exactly 1 / p(clicked position) as in IPW-LTR."""
    clicked = [ipw_weight(pos, propensities, clip) for label, pos in zip(labels, positions, strict=True) if label > 0]
    rest = sum(clicked) / len(clicked) if clicked else 1.0
    return [ipw_weight(pos, propensities, clip) if label > 0 else rest
            for label, pos in zip(labels, positions, strict=True)]
