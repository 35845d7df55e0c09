"""Which item ids the catalog holds, for rejecting events about items that do not exist (decision 0764).

Ingest writes an ``item:<item_id>`` hash for every catalog item into Redis (under the catalog's key prefix,
``pickwise_common.redis.item_key``); one pipelined ``EXISTS`` per call answers, and ids found are remembered
for a while, per catalog (the catalog changes only at ingest). When Redis
cannot answer, events are accepted unchecked: losing a real click is worse than counting an unknown id,
which the consumer's bounded ``pop:all`` and the catalog-only popularity tiers absorb."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

from pickwise_common import redis as rd
from pickwise_common.catalogs import DEFAULT_CATALOG
from pickwise_gateway.ttl_cache import TTLCache

log = logging.getLogger("pickwise.gateway.known_items")

ITEM_CHECKS = Counter("pickwise_gateway_item_checks_total",
                      "Event item ids checked against the catalog, by outcome (known, cached, unknown, unchecked)",
                      ["outcome"])


class KnownItems:
    def __init__(self, redis: aioredis.Redis | None, *, cache_entries: int = 50_000, cache_ttl_s: float = 300.0):
        self.redis = redis
        self._known: TTLCache[bool] = TTLCache(cache_entries, cache_ttl_s)

    async def unknown(self, item_ids: Sequence[str], catalog: str | None = None) -> set[str]:
        """The ids among ``item_ids`` that ``catalog`` does not hold (empty when Redis cannot answer)."""
        prefix = f"{catalog or DEFAULT_CATALOG}/"
        to_check = [i for i in dict.fromkeys(item_ids) if self._known.get(prefix + i) is None]
        ITEM_CHECKS.labels("cached").inc(len(item_ids) - len(to_check))
        if not to_check:
            return set()
        if self.redis is None:
            ITEM_CHECKS.labels("unchecked").inc(len(to_check))
            return set()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for item_id in to_check:
                    pipe.exists(rd.item_key(item_id, catalog))
                found = await pipe.execute()
        except (RedisError, OSError) as exc:
            ITEM_CHECKS.labels("unchecked").inc(len(to_check))
            log.warning("item catalog check skipped, Redis unavailable: %s", exc)
            return set()
        missing = set()
        for item_id, exists in zip(to_check, found, strict=True):
            if exists:
                self._known.put(prefix + item_id, True)
                ITEM_CHECKS.labels("known").inc()
            else:
                missing.add(item_id)
                ITEM_CHECKS.labels("unknown").inc()
        return missing
