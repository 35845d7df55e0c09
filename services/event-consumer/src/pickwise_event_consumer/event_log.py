"""The Postgres side: the interaction log (unique ``event_id``), the impression log (unique ``event_id``) and
session memory (turns, JSONB constraints). Inserts are idempotent, so a redelivered message changes nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

from pickwise_common.event_log_rows import turn_from_row
from pickwise_common.schemas import ImpressionEvent, InteractionEvent, SessionEvent

INSERT_EVENTS_SQL = """
INSERT INTO events (event_id, type, user_id, item_id, session_id, request_id, position, source, ts, payload,
                    catalog, quantity, invoice)
SELECT e, t, u, i, s, r, p, src, ts, pl::jsonb, c, q, inv
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[],
            $9::timestamptz[], $10::text[], $11::text[], $12::int[], $13::text[])
     AS x(e, t, u, i, s, r, p, src, ts, pl, c, q, inv)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

INSERT_IMPRESSIONS_SQL = """
INSERT INTO impressions (event_id, request_id, ts, endpoint, catalog, user_id, session_id, query, experiment, variant,
                         model_versions, items, explore, interleaving, latency_ms, status, degraded, payload)
SELECT e, r, ts, ep, c, u, s, q, ex, v, mv::jsonb, it::jsonb, xp::jsonb, il, lat, st, dg::jsonb, pl::jsonb
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bool[], $15::float8[], $16::int[],
            $17::text[], $18::text[])
     AS x(e, r, ts, ep, c, u, s, q, ex, v, mv, it, xp, il, lat, st, dg, pl)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

# what has a column of its own; the rest of the event (the parsed query's constraints) goes to ``payload``
IMPRESSION_COLUMNS = frozenset({
    "schema_version", "event_id", "request_id", "ts", "endpoint", "catalog", "user_id", "session_id", "query",
    "experiment", "variant", "model_versions", "items", "explore", "interleaving", "latency_ms", "status",
    "degraded"})

UPSERT_SESSION_SQL = """
INSERT INTO sessions (session_id, user_id, created_at, updated_at) VALUES ($1, $2, $3, $3)
ON CONFLICT (session_id) DO UPDATE
SET updated_at = GREATEST(sessions.updated_at, EXCLUDED.updated_at),
    user_id = COALESCE(sessions.user_id, EXCLUDED.user_id)
"""

# turn_no is the next number of the session; one session's events share a partition (key = session_id), so
# they are applied in order by one consumer. request_id (or the event id) makes a redelivery a no-op.
INSERT_TURN_SQL = """
INSERT INTO session_turns (session_id, turn_no, query, item_ids, answer, variant, parsed, request_id, ts)
SELECT $1, COALESCE(MAX(turn_no), 0) + 1, $2, $3::text[], $4, $5, $6::jsonb, $7, $8
FROM session_turns WHERE session_id = $1
ON CONFLICT (session_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
RETURNING turn_no
"""

RECENT_TURNS_SQL = """
SELECT turn_no, query, item_ids, answer, variant, parsed, request_id, ts
FROM session_turns WHERE session_id = $1 ORDER BY turn_no DESC LIMIT $2
"""


def _payload(event: InteractionEvent) -> str:
    return event.model_dump_json(exclude={"schema_version"})


async def insert_events(conn: asyncpg.Connection | asyncpg.Pool, events: Sequence[InteractionEvent]) -> set[str]:
    """Insert the events not stored yet (one statement). Returns the event ids inserted now."""
    if not events:
        return set()
    rows = await conn.fetch(
        INSERT_EVENTS_SQL,
        [e.event_id for e in events], [e.type.value for e in events], [e.user_id for e in events],
        [e.item_id for e in events], [e.session_id for e in events], [e.request_id for e in events],
        [e.position for e in events], [e.source for e in events], [e.ts for e in events],
        [_payload(e) for e in events], [e.catalog for e in events], [e.quantity for e in events],
        [e.invoice for e in events])
    return {str(r["event_id"]) for r in rows}


def _impression_items(event: ImpressionEvent) -> str:
    return json.dumps([item.model_dump(mode="json", exclude_none=True) for item in event.items])


async def insert_impressions(conn: asyncpg.Connection | asyncpg.Pool, events: Sequence[ImpressionEvent]) -> set[str]:
    """Insert the impressions not stored yet (one statement for the batch). Returns the event ids inserted now."""
    if not events:
        return set()
    rows = await conn.fetch(
        INSERT_IMPRESSIONS_SQL,
        [e.event_id for e in events], [e.request_id for e in events], [e.ts for e in events],
        [e.endpoint for e in events], [e.catalog for e in events], [e.user_id for e in events],
        [e.session_id for e in events], [e.query for e in events], [e.experiment for e in events],
        [e.variant for e in events], [json.dumps(e.model_versions) for e in events],
        [_impression_items(e) for e in events],
        [json.dumps(e.explore) if e.explore is not None else None for e in events],
        [e.interleaving for e in events], [e.latency_ms for e in events], [e.status for e in events],
        [json.dumps(e.degraded) for e in events],
        [json.dumps(e.model_dump(mode="json", exclude=set(IMPRESSION_COLUMNS))) for e in events])
    return {str(r["event_id"]) for r in rows}


def turn_dedupe_key(event: SessionEvent) -> str:
    return event.request_id or f"event:{event.event_id}"


async def insert_turns(pool: asyncpg.Pool, events: Sequence[SessionEvent]) -> list[int | None]:
    """Store session turns in order, in one transaction. Returns each turn's number (None when it had
    been stored before)."""
    if not events:
        return []
    out: list[int | None] = []
    async with pool.acquire() as conn, conn.transaction():
        for event in events:
            await conn.execute(UPSERT_SESSION_SQL, event.session_id, event.user_id, event.ts)
            turn_no = await conn.fetchval(
                INSERT_TURN_SQL, event.session_id, event.query, event.item_ids, event.answer, event.variant,
                json.dumps(event.parsed, default=str), turn_dedupe_key(event), event.ts)
            out.append(turn_no)
    return out


async def recent_turns(pool: asyncpg.Pool, session_id: str, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` turns, oldest first."""
    rows = await pool.fetch(RECENT_TURNS_SQL, session_id, limit)
    return [turn_from_row(r) for r in reversed(rows)]
