"""Reading session memory and user features: the Redis cache first, Postgres for the rest. No FastAPI."""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from pickwise_common import redis as keys
from pickwise_common.errors import NotFound
from pickwise_common.event_log_rows import event_from_row, impression_from_row, turn_from_row
from pickwise_common.features import CLICKS_CAP, UserFeatures, affinities_from_hash

SESSION_SQL = "SELECT session_id, user_id, created_at, updated_at FROM sessions WHERE session_id = $1"
TURNS_SQL = """
SELECT turn_no, query, item_ids, answer, variant, parsed, request_id, ts
FROM session_turns WHERE session_id = $1 ORDER BY turn_no DESC LIMIT $2
"""
EVENTS_SQL = """
SELECT event_id, type, user_id, item_id, catalog, quantity, session_id, request_id, position, source, ts,
       received_at
FROM events WHERE user_id = $1 AND ($2::text IS NULL OR type = $2) AND ($4::text IS NULL OR catalog = $4)
ORDER BY ts DESC LIMIT $3
"""

IMPRESSIONS_SQL = """
SELECT event_id, request_id, ts, received_at, endpoint, catalog, user_id, session_id, query, experiment, variant,
       model_versions, items, explore, interleaving, latency_ms, status, degraded, payload
FROM impressions WHERE user_id = $1 AND ($3::text IS NULL OR catalog = $3)
ORDER BY ts DESC LIMIT $2
"""


async def cached_session(redis: aioredis.Redis | None, session_id: str) -> dict[str, Any] | None:
    if redis is None:
        return None
    try:
        raw = await redis.get(keys.session_key(session_id))
    except Exception:  # the cache is an optimisation: Postgres answers without it
        return None
    if not raw:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("turns"), list) else None


async def session_turns(pool: asyncpg.Pool, redis: aioredis.Redis | None, session_id: str, limit: int,
                        cache_turns: int) -> dict[str, Any]:
    """``{session_id, user_id, turns (newest last), source}``; NotFound for an unknown session."""
    cached = await cached_session(redis, session_id)
    # the cache holds the last ``cache_turns``: enough unless more are asked of a longer session
    if cached is not None and (len(cached["turns"]) >= limit or len(cached["turns"]) < cache_turns):
        return {"session_id": session_id, "user_id": cached.get("user_id"), "turns": cached["turns"][-limit:],
                "source": "cache"}
    session = await pool.fetchrow(SESSION_SQL, session_id)
    if session is None:
        raise NotFound(f"session {session_id!r} is unknown")
    rows = await pool.fetch(TURNS_SQL, session_id, limit)
    return {"session_id": session_id, "user_id": session["user_id"],
            "turns": [turn_from_row(r) for r in reversed(rows)], "source": "postgres"}


async def user_features(redis: aioredis.Redis, user_id: str, half_life_h: float,
                        now_s: float | None = None, catalog: str | None = None) -> UserFeatures:
    """Recent clicks (newest first) and affinities decayed to now, in ``catalog`` (default: flipkart)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lrange(keys.user_clicks_key(user_id, catalog), 0, CLICKS_CAP - 1)
        pipe.hgetall(keys.user_affinity_key(user_id, catalog))
        clicks, raw = await pipe.execute()
    now_s = time.time() if now_s is None else now_s
    affinities = {k: round(v, 6) for k, v in affinities_from_hash(raw or {}, now_s, half_life_h).items()}
    return UserFeatures(user_id=user_id, recent_clicks=list(clicks or []), affinities=affinities)


async def user_events(pool: asyncpg.Pool, user_id: str, limit: int, event_type: str | None,
                      catalog: str | None = None) -> list[dict[str, Any]]:
    """The user's events, newest first; only ``catalog``'s when given, else every catalog's."""
    return [event_from_row(r) for r in await pool.fetch(EVENTS_SQL, user_id, event_type, limit, catalog)]


async def user_impressions(pool: asyncpg.Pool, user_id: str, limit: int,
                           catalog: str | None = None) -> list[dict[str, Any]]:
    """What responses showed the user (impressions), newest first; only ``catalog``'s when given."""
    return [impression_from_row(r) for r in await pool.fetch(IMPRESSIONS_SQL, user_id, limit, catalog)]
