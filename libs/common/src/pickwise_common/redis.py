"""Redis connection helper (one pool per process) and the key names of DESIGN §4.

Per-user keys carry a hash tag ``{uid}`` so one Lua script touches one slot in Redis Cluster.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pickwise_common.catalogs import catalog_key
from pickwise_common.settings import RedisSettings

# What a Redis call raises when Redis is down, slow or refuses a command: the failures a caller degrades on.
# Anything else (TypeError, AttributeError, ...) is a bug of ours and must surface, not degrade.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


def create_redis(settings: RedisSettings) -> aioredis.Redis:
    timeout_s = settings.redis_timeout_ms / 1000
    return aioredis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s, max_connections=settings.redis_max_connections,
        health_check_interval=30)


async def ping(client: aioredis.Redis) -> dict[str, Any]:
    await client.ping()
    pool = client.connection_pool
    return {"pool_in_use": len(getattr(pool, "_in_use_connections", ()))}


def user_clicks_key(user_id: str, catalog: str | None = None) -> str:
    return catalog_key(catalog, f"u:{{{user_id}}}:clicks")


def user_affinity_key(user_id: str, catalog: str | None = None) -> str:
    return catalog_key(catalog, f"u:{{{user_id}}}:affinity")


def user_history_key(user_id: str, catalog: str | None = None) -> str:
    """Hash item_id -> interaction weight of everything the user bought/clicked (the CF fold-in input)."""
    return catalog_key(catalog, f"u:{{{user_id}}}:hist")


def user_dismissed_key(user_id: str, catalog: str | None = None) -> str:
    """Set of the item ids the user dismissed: never recommended to them again."""
    return catalog_key(catalog, f"u:{{{user_id}}}:dismissed")


def user_shown_key(user_id: str, catalog: str | None = None) -> str:
    """Hash item_id -> times shown to the user since they last engaged with it (impressions; a click, add to
    cart or purchase of the item deletes its field). The gateway's over-shown filter reads it (decision 1001)."""
    return catalog_key(catalog, f"u:{{{user_id}}}:shown")


def popularity_hour_key(at: datetime, catalog: str | None = None) -> str:
    return catalog_key(catalog, "pop:h:" + at.astimezone(UTC).strftime("%Y%m%d%H"))


POPULARITY_ALL_KEY = "pop:all"


def popularity_all_key(catalog: str | None = None) -> str:
    return catalog_key(catalog, POPULARITY_ALL_KEY)


def user_seen_key(user_id: str, event_id: str, catalog: str | None = None) -> str:
    """De-duplication mark of an event, in its user's slot: the feature script touches one slot only."""
    return catalog_key(catalog, f"u:{{{user_id}}}:seen:{event_id}")


def session_key(session_id: str) -> str:
    return f"sess:{{{session_id}}}"


def item_key(item_id: str, catalog: str | None = None) -> str:
    return catalog_key(catalog, f"item:{item_id}")


# Sorted set item_id -> rating of the whole catalog (written by ingest): the last popularity fallback.
CATALOG_BY_RATING_KEY = "catalog:by_rating"


def catalog_by_rating_key(catalog: str | None = None) -> str:
    return catalog_key(catalog, CATALOG_BY_RATING_KEY)
