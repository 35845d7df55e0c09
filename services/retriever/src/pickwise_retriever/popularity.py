"""Popularity from Redis, per catalog (its keys, ``redis.popularity_hour_key`` / ``popularity_all_key``): the hourly
counters ``pop:h:<yyyymmddhh>`` of the last 24 h, then the last 7 days, then ``pop:all``, then the catalog's
rating order; every read tolerates Redis being down."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pickwise_common import redis as rd

log = logging.getLogger("pickwise.retriever.popularity")
PER_KEY_TOP = 500


class Popularity:
    """Reads with a short back-off after a failure, so a dead Redis costs one fast error per few seconds."""

    def __init__(self, redis: Any, *, backoff_s: float = 5.0) -> None:
        self.redis = redis
        self.backoff_s = backoff_s
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        log.warning("redis unavailable for popularity: %s", exc)
        self._down_until = time.monotonic() + self.backoff_s

    async def normalised(self, item_ids: list[str], catalog: str | None = None) -> dict[str, float]:
        """pop:all score / the highest pop:all score of the catalog, per id; {} (all 0) when Redis is unavailable."""
        if not item_ids or not self.available:
            return {}
        key = rd.popularity_all_key(catalog)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrevrange(key, 0, 0, withscores=True)
            pipe.zmscore(key, item_ids)
            top, scores = await pipe.execute()
        except rd.REDIS_ERRORS as exc:  # any Redis failure degrades to "no popularity"
            self._failed(exc)
            return {}
        best = float(top[0][1]) if top else 0.0
        if best <= 0:
            return {}
        return {i: round(float(s) / best, 6) for i, s in zip(item_ids, scores, strict=True) if s}

    async def top(self, k: int, now: datetime | None = None, known: Callable[[str], bool] = lambda _: True,
                  catalog: str | None = None) -> tuple[list[tuple[str, float]], str]:
        """Best ids with their scores and the tier they came from: 24h, 7d or all ([], 'rating' when none).
        A tier counts only ids ``known`` accepts (ids of the loaded catalog), so counters of items that are
        not in the catalog cannot hide the next tier."""
        if not self.available:
            return [], "rating"
        now = now or datetime.now(UTC)
        try:
            for tier, hours in (("24h", 24), ("7d", 24 * 7)):
                keys = [rd.popularity_hour_key(now - timedelta(hours=h), catalog) for h in range(hours)]
                pipe = self.redis.pipeline(transaction=False)
                for key in keys:
                    pipe.zrevrange(key, 0, PER_KEY_TOP - 1, withscores=True)
                totals: dict[str, float] = defaultdict(float)
                for rows in await pipe.execute():
                    for member, score in rows or []:
                        if known(member):
                            totals[member] += float(score)
                if totals:
                    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])), tier
            rows = await self.redis.zrevrange(rd.popularity_all_key(catalog), 0, max(k * 4, PER_KEY_TOP) - 1,
                                              withscores=True)
            ranked = [(m, float(s)) for m, s in rows if known(m)]
            if ranked:
                return ranked, "all"
        except rd.REDIS_ERRORS as exc:
            self._failed(exc)
        return [], "rating"
