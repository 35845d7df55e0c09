"""The simulated shoppers' click model (decision 1007): a position-based model with a purchase stop.

A shopper scans the page top down. Position k (0-based) is examined with probability
``examination(k) = 1 / (k + 1) ** eta``; an examined item is clicked with its attractiveness
``a(u) = a_min + (a_max - a_min) * u ** 2`` (u = TRUE utility); a click becomes an add-to-cart with
probability ``cart_scale * u`` and a cart a purchase with probability ``purchase_scale * u``; the shopper
stops after a purchase. Examination and attraction are independent, so the examination curve is what the
RandPair estimator (``propensity``) should recover.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Action = Literal["click", "add_to_cart", "purchase"]


@dataclass(frozen=True)
class ClickModel:
    eta: float = 1.0
    a_min: float = 0.02
    a_max: float = 0.9
    cart_scale: float = 0.3
    purchase_scale: float = 0.3

    def examination(self, position: int) -> float:
        return 1.0 / (position + 1) ** self.eta

    def attractiveness(self, u: float) -> float:
        return self.a_min + (self.a_max - self.a_min) * u * u

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Interaction:
    position: int
    action: Action


def browse(utilities: Sequence[float], rng: random.Random, model: ClickModel = ClickModel()) -> list[Interaction]:
    """What one shopper does with one page whose items have ``utilities`` (in page order): clicks, carts,
    purchases, in order; a purchase ends the page (and, for the simulator, the session)."""
    out: list[Interaction] = []
    for position, u in enumerate(utilities):
        examined = rng.random() < model.examination(position)
        attracted = rng.random() < model.attractiveness(u)
        if not (examined and attracted):
            continue
        out.append(Interaction(position, "click"))
        if rng.random() < model.cart_scale * u:
            out.append(Interaction(position, "add_to_cart"))
            if rng.random() < model.purchase_scale * u:
                out.append(Interaction(position, "purchase"))
                break
    return out


def expected_utility(utilities: Sequence[float], model: ClickModel = ClickModel(), k: int = 10) -> float:
    """Examination-weighted mean true utility of a page's top k (what a shopper gets out of it, in [0, 1])."""
    weights = [model.examination(i) for i in range(min(k, len(utilities)))]
    total = sum(weights)
    return sum(w * u for w, u in zip(weights, utilities, strict=False)) / total if total else 0.0
