"""Synthetic shoppers for ``pickwise-pipeline simulate`` (decision 1007): hidden preferences drawn from the
catalog's own distributions, the TRUE utility of an item for a shopper, its graded gain for NDCG, and the
natural-language queries a shopper types (often vaguer than what they really want).

Everything here is a pure function of its arguments and a seeded ``random.Random``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pickwise_common.schemas import Item

# How a shopper names a brand in a query (the retriever's alias table maps these back, e.g. redmi -> Xiaomi).
BRAND_SPELLINGS: dict[str, tuple[str, ...]] = {
    "Xiaomi": ("redmi", "mi", "xiaomi"), "Motorola": ("moto", "motorola"), "OnePlus": ("oneplus",),
    "Google": ("google pixel", "pixel"), "Apple": ("apple", "iphone"),
}
USES = ("camera", "gaming", "battery", "selfie", "5g")
QUALITIES = ("best", "good", "top rated", "value for money")
GRADE_THRESHOLDS = (0.2, 0.45, 0.7)  # u >= 0.7 -> 3, >= 0.45 -> 2, >= 0.2 -> 1, else 0


@dataclass(frozen=True)
class Shopper:
    """What a shopper really wants (hidden from the system; only some of it shows in their queries)."""

    user_id: str
    brands: tuple[str, ...]  # canonical brand names; empty = no brand preference
    brand_loyalty: float  # 0..1: how much an off-brand phone loses
    budget_inr: float  # soft maximum
    price_sensitivity: float  # how fast utility falls above the budget
    ram_gb_min: float | None
    storage_gb_min: float | None
    rating_weight: float  # 0..1: how much the rating matters
    use: str  # what the phone is for (flavour in queries only)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shopper:
        return cls(**{**data, "brands": tuple(data["brands"])})


def smartphones(items: Sequence[Item]) -> list[Item]:
    """The items a simulated shopper anchors on: priced smartphones with RAM and storage in GB."""
    return [i for i in items if not i.attrs.get("feature_phone") and i.ram_gb and i.ram_gb >= 1
            and i.storage_gb and i.price_inr]


def draw_shopper(user_id: str, anchors: Sequence[Item], rng: random.Random) -> Shopper:
    """A shopper whose wishes follow the catalog's joint distribution: an anchor phone drawn uniformly from the
    catalog sets brand, budget and minimum RAM/storage (so at least one item fits), the rest is drawn per shopper."""
    anchor = rng.choice(list(anchors))
    brands: tuple[str, ...] = ()
    roll = rng.random()
    if roll < 0.6:
        brands = (anchor.brand,)
    elif roll < 0.85:
        other = rng.choice(list(anchors)).brand
        brands = tuple(dict.fromkeys((anchor.brand, other)))
    budget = math.ceil(float(anchor.price_inr or 0) * rng.uniform(1.0, 1.3) / 500) * 500
    return Shopper(
        user_id=user_id, brands=brands, brand_loyalty=round(rng.uniform(0.4, 0.9), 3), budget_inr=float(budget),
        price_sensitivity=round(rng.uniform(1.0, 4.0), 3),
        ram_gb_min=anchor.ram_gb if rng.random() < 0.5 else None,
        storage_gb_min=anchor.storage_gb if rng.random() < 0.4 else None,
        rating_weight=round(rng.uniform(0.0, 1.0), 3), use=rng.choice(USES))


def utility(shopper: Shopper, item: Item) -> float:
    """TRUE utility u(shopper, item) in [0, 1]: a product of soft factors (decision 1007)

    price: 1 within budget, exp(-5 * sensitivity * overshoot) above it (overshoot = price / budget - 1);
    value: 0.7 + 0.3 * min(1, price / budget) (a phone far below the budget is less than they wanted);
    brand: 1 for a preferred brand (or no preference), 1 - loyalty otherwise;
    RAM / storage: 1 when at least the minimum (or none), 0.3 below it or unknown;
    quality: (1 - w) + w * clip((rating - 3) / 2, 0, 1) with w = rating_weight (no rating counts as 3.5);
    a feature phone: x 0.2."""
    price = float(item.price_inr or item.price or 0.0)
    if price <= 0:
        return 0.0
    ratio = price / shopper.budget_inr
    price_f = 1.0 if ratio <= 1.0 else math.exp(-5.0 * shopper.price_sensitivity * (ratio - 1.0))
    value_f = 0.7 + 0.3 * min(1.0, ratio)
    brand_f = 1.0 if not shopper.brands or item.brand in shopper.brands else 1.0 - shopper.brand_loyalty
    ram_f = 1.0 if shopper.ram_gb_min is None or (item.ram_gb or 0) >= shopper.ram_gb_min else 0.3
    storage_f = 1.0 if shopper.storage_gb_min is None or (item.storage_gb or 0) >= shopper.storage_gb_min else 0.3
    rating = item.rating if item.rating is not None else 3.5
    quality_f = (1.0 - shopper.rating_weight) + shopper.rating_weight * min(1.0, max(0.0, (rating - 3.0) / 2.0))
    phone_f = 0.2 if item.attrs.get("feature_phone") else 1.0
    return max(0.0, min(1.0, price_f * value_f * brand_f * ram_f * storage_f * quality_f * phone_f))


def grade(u: float) -> int:
    """The graded gain NDCG uses for a true utility: 3 (u >= 0.7), 2 (>= 0.45), 1 (>= 0.2), else 0."""
    return sum(u >= t for t in GRADE_THRESHOLDS)


def _price_text(amount: float, rng: random.Random) -> str:
    step = 1000 if amount < 50_000 else 5000
    rounded = int(math.ceil(amount / step) * step)
    word = rng.choice(("under", "below", "within", "less than", "upto"))
    if rounded % 1000 == 0 and rng.random() < 0.5:
        return f"{word} {rounded // 1000}k"
    return f"{word} {rounded}"


def _gb(value: float) -> str:
    return f"{value / 1024:g}tb" if value >= 1024 else f"{value:g}gb"


def query_for(shopper: Shopper, rng: random.Random, *, specificity: float) -> str:
    """A query a shopper would type: each hidden preference is mentioned with probability ``specificity``,
    in one of several phrasings ("samsung under 15k with 128gb", "redmi phone 6gb ram below 12000",
    "best camera phone under 20000"). Never empty: with nothing mentioned it is "<quality> <use> phone"."""
    parts: list[str] = []
    if shopper.brands and rng.random() < specificity:
        parts.append(rng.choice(BRAND_SPELLINGS.get(shopper.brands[0], (shopper.brands[0].lower(),))))
    lead = "phone" if not parts or rng.random() < 0.5 else ""
    if not parts or rng.random() < 0.3:
        parts.insert(0, f"{rng.choice(QUALITIES)} {shopper.use}")
    if lead:
        parts.append(lead)
    if shopper.ram_gb_min and rng.random() < specificity:
        parts.append(f"{_gb(shopper.ram_gb_min)} ram")
    if rng.random() < max(specificity, 0.5):
        # the budget as typed: sometimes a round number below the real (soft) one
        stated = shopper.budget_inr * (rng.choice((1.0, 1.0, 0.9)))
        parts.append(_price_text(stated, rng))
    if shopper.storage_gb_min and rng.random() < specificity:
        parts.append(rng.choice(("with ", "")) + _gb(shopper.storage_gb_min) + rng.choice(("", " storage")))
    text = " ".join(p for p in parts if p).strip()
    return " ".join(text.split())


def session_queries(shopper: Shopper, rng: random.Random, *, max_queries: int = 3) -> list[str]:
    """1..max_queries queries, vague first and more specific after (a shopper refines when the page disappoints);
    consecutive duplicates are dropped."""
    count = rng.randint(1, max_queries)
    out: list[str] = []
    for n in range(count):
        q = query_for(shopper, rng, specificity=0.35 + 0.3 * n)
        if not out or out[-1] != q:
            out.append(q)
    return out
