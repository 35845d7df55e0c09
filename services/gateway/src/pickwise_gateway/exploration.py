"""RandPair exploration (decision 1004): for a share of responses, one adjacent pair (k, k+1) among the first
ten positions is shown in random order, so the logs hold the same items at swapped positions and position bias
can be estimated from them. Everything is derived from the request id, so a request's choice is reproducible."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

EXPLORE_DEPTH = 10  # the pair lies within the first ten positions


@dataclass(frozen=True)
class RandPair:
    pair: int      # the pair is positions (pair, pair + 1), 0-based
    swapped: bool

    def record(self) -> dict[str, int]:
        """The impression's ``explore`` field."""
        return {"pair": self.pair, "swapped": int(self.swapped)}


def rand_pair(request_id: str, n_items: int, share: float) -> RandPair | None:
    """Whether this request explores and, if so, which pair and whether it is swapped: the request is in the
    ``share`` by its own hash, k is uniform in [0, min(10, n) − 2], the swap has probability ½. None when the
    request does not explore or the page has fewer than two items."""
    if share <= 0 or n_items < 2:
        return None
    rng = random.Random(hashlib.sha256(f"explore:{request_id}".encode()).digest())
    if rng.random() >= share:
        return None
    k = rng.randint(0, min(EXPLORE_DEPTH, n_items) - 2)
    return RandPair(pair=k, swapped=rng.random() < 0.5)


def apply(items: list[T], choice: RandPair | None) -> list[T]:
    """The page in shown order: positions k and k+1 exchanged when the choice swapped them."""
    if choice is None or not choice.swapped:
        return items
    shown = list(items)
    k = choice.pair
    shown[k], shown[k + 1] = shown[k + 1], shown[k]
    return shown
