"""Behaviour boost (DESIGN §3): real-time personalisation from the user's Redis features.

``multiplier = min(cap, 1 + w_click*[item or a colour variant clicked recently]
                       + w_affinity*affinity(brand, category; decayed, 0..1)
                       + w_popularity*popularity(0..1))``

``fetch_signals`` reads everything with one pipelined round trip (plus one more only for clicked items
whose model group is not yet in the in-process cache); ``compute_boosts`` is pure.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from pickwise_common import redis as rkeys
from pickwise_common.features import AFFINITY_HALF_LIFE_H, CLICKS_CAP, affinities_from_hash, affinity_field
from pickwise_common.schemas import BoostDetail, Candidate


@dataclass(frozen=True)
class BoostWeights:
    click: float = 1.0
    affinity: float = 0.2
    popularity: float = 0.3
    cap: float = 3.0
    half_life_h: float = AFFINITY_HALF_LIFE_H


@dataclass
class UserSignals:
    """What the boost needs for one request: clicked items (and their model groups), the user's decayed
    affinities, and popularity of the candidates relative to the most popular item."""

    clicked_items: set[str] = field(default_factory=set)
    clicked_groups: set[str] = field(default_factory=set)
    affinities: dict[str, float] = field(default_factory=dict)
    popularity: dict[str, float] = field(default_factory=dict)
    popularity_max: float = 0.0


def _normalised(affinities: dict[str, float], dim: str) -> dict[str, float]:
    prefix = f"{dim}:"
    scores = {k: v for k, v in affinities.items() if k.startswith(prefix)}
    top = max(scores.values(), default=0.0)
    if top <= 0:
        return {}
    return {k: max(0.0, v) / top for k, v in scores.items()}


def popularity_norm(score: float | None, top: float) -> float:
    """Log-scaled so one viral item does not flatten everything else to zero."""
    if not score or score <= 0 or top <= 0:
        return 0.0
    return min(1.0, math.log1p(score) / math.log1p(top))


def compute_boosts(candidates: Sequence[Candidate], signals: UserSignals,
                   weights: BoostWeights) -> list[BoostDetail]:
    brand_aff = _normalised(signals.affinities, "brand")
    category_aff = _normalised(signals.affinities, "category")
    out = []
    for cand in candidates:
        item = cand.item
        ids = {item.item_id, *cand.variant_ids}
        clicked = bool(ids & signals.clicked_items) or item.group_id in signals.clicked_groups
        affinity = 0.5 * brand_aff.get(affinity_field("brand", item.brand), 0.0) \
            + 0.5 * category_aff.get(affinity_field("category", item.category), 0.0)
        pop = popularity_norm(signals.popularity.get(item.item_id), signals.popularity_max)
        raw = 1.0 + weights.click * float(clicked) + weights.affinity * affinity + weights.popularity * pop
        out.append(BoostDetail(clicked=clicked, affinity=round(affinity, 6), popularity=round(pop, 6),
                               multiplier=round(min(weights.cap, raw), 6)))
    return out


class GroupCache:
    """item_id -> group_id (catalog facts; bounded LRU)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._data: OrderedDict[str, str] = OrderedDict()

    def get(self, item_id: str) -> str | None:
        value = self._data.get(item_id)
        if value is not None:
            self._data.move_to_end(item_id)
        return value

    def put(self, item_id: str, group_id: str) -> None:
        self._data[item_id] = group_id
        self._data.move_to_end(item_id)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


async def fetch_signals(client: aioredis.Redis, user_id: str | None, candidates: Sequence[Candidate],
                        groups: GroupCache, *, half_life_h: float = AFFINITY_HALF_LIFE_H,
                        now_s: float | None = None, catalog: str | None = None) -> UserSignals:
    """Read the user's clicks and affinities and the candidates' popularity, all from ``catalog``'s keys (a
    user's clicks in one catalog do not boost another's items). Raises redis errors (the caller turns them
    into ``features_available: false``)."""
    for cand in candidates:
        groups.put(cand.item.item_id, cand.item.group_id)
    ids = [c.item.item_id for c in candidates]
    popularity_key = rkeys.popularity_all_key(catalog)
    pipe = client.pipeline(transaction=False)
    if user_id:
        pipe.lrange(rkeys.user_clicks_key(user_id, catalog), 0, CLICKS_CAP - 1)
        pipe.hgetall(rkeys.user_affinity_key(user_id, catalog))
    if ids:
        pipe.zmscore(popularity_key, ids)
    pipe.zrevrange(popularity_key, 0, 0, withscores=True)
    results = await pipe.execute()
    signals = UserSignals()
    if user_id:
        clicks, affinity_raw = results[0], results[1]
        results = results[2:]
        signals.clicked_items = set(clicks)
        signals.affinities = affinities_from_hash(affinity_raw, now_s if now_s is not None else time.time(),
                                                  half_life_h)
        missing = [item_id for item_id in signals.clicked_items if groups.get(item_id) is None]
        if missing:
            lookup = client.pipeline(transaction=False)
            for item_id in missing:
                lookup.hget(rkeys.item_key(item_id, catalog), "group_id")
            for item_id, group_id in zip(missing, await lookup.execute(), strict=True):
                if group_id:
                    groups.put(item_id, group_id)
        signals.clicked_groups = {g for g in (groups.get(i) for i in signals.clicked_items) if g}
    if ids:
        scores = results[0]
        signals.popularity = {i: float(s) for i, s in zip(ids, scores, strict=True) if s is not None}
        results = results[1:]
    top = results[0]
    signals.popularity_max = float(top[0][1]) if top else 0.0
    return signals
