"""Real-time user features in Redis (DESIGN §3-4): the layout the event-consumer writes and the
reranker / session service read, and the decay both sides apply.

- ``u:{uid}:clicks``   list of item ids, newest first, capped at ``CLICKS_CAP``
- ``u:{uid}:affinity`` hash: ``<dim>:<value>`` -> score (float) and ``<dim>:<value>:t`` -> unix seconds of
  the last update; dims are ``brand`` and ``category``. The score is stored undecayed-at-``t``: its value
  now is ``score * 0.5 ** ((now - t) / half_life)``; an update sets ``score = decayed + weight, t = now``.
- ``pop:h:<yyyymmddhh>`` and ``pop:all``: sorted sets item_id -> weighted count
- ``item:<item_id>``   hash of item metadata written by ingest (brand, category, group_id, ...)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, Field

CLICKS_CAP = 50
AFFINITY_HALF_LIFE_H = 24.0
AFFINITY_DIMS = ("brand", "category")
SEEN_TTL_S = 7 * 24 * 3600
POP_HOUR_TTL_S = 8 * 24 * 3600


def affinity_field(dim: str, value: str) -> str:
    return f"{dim}:{value.strip().lower()}"


def decayed(score: float, updated_at_s: float, now_s: float, half_life_h: float = AFFINITY_HALF_LIFE_H) -> float:
    age_s = max(0.0, now_s - updated_at_s)
    return score * math.pow(0.5, age_s / (half_life_h * 3600.0))


def affinities_from_hash(raw: Mapping[str, str], now_s: float,
                         half_life_h: float = AFFINITY_HALF_LIFE_H) -> dict[str, float]:
    """Decode an affinity hash into ``{"brand:samsung": decayed_score, ...}``."""
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key.endswith(":t"):
            continue
        stamp = float(raw.get(f"{key}:t", now_s))
        out[key] = decayed(float(value), stamp, now_s, half_life_h)
    return out


class UserFeatures(BaseModel):
    """What the reranker's behaviour boost needs about one user, as the session service serves it."""

    user_id: str
    recent_clicks: list[str] = Field(default_factory=list, description="item ids, newest first")
    affinities: dict[str, float] = Field(default_factory=dict, description="'brand:samsung' -> decayed score")
