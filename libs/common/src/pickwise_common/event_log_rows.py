"""Rows of the Postgres event log as JSON-ready dicts: one mapping for the consumer (which caches session
turns in Redis) and the session service (which serves them), so both always agree on the shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def turn_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ``session_turns`` row: ``parsed`` decoded from JSONB, ``ts`` as ISO 8601."""
    parsed = row["parsed"]
    return {"turn_no": row["turn_no"], "query": row["query"], "item_ids": list(row["item_ids"] or []),
            "answer": row["answer"], "variant": row["variant"],
            "parsed": json.loads(parsed) if isinstance(parsed, str) else (parsed or {}),
            "request_id": row["request_id"], "ts": row["ts"].isoformat()}


def event_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``events`` row: ``event_id`` as a string, times as ISO 8601."""
    out = dict(row)
    out["event_id"] = str(out["event_id"])
    for key in ("ts", "received_at"):
        if isinstance(out.get(key), datetime):
            out[key] = out[key].isoformat()
    return out


def _jsonb(value: Any, default: Any) -> Any:
    """asyncpg hands JSONB over as text unless a codec is set: decode it either way."""
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


def impression_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``impressions`` row: ``event_id`` as a string, times as ISO 8601, JSONB columns decoded, the query's
    constraints (kept in ``payload``) as ``constraints``."""
    out = {key: row[key] for key in ("request_id", "endpoint", "catalog", "user_id", "session_id", "query",
                                     "experiment", "variant", "interleaving", "latency_ms", "status")}
    out["event_id"] = str(row["event_id"])
    out["type"] = "impression"
    out["ts"] = row["ts"].isoformat()
    out["received_at"] = row["received_at"].isoformat()
    out["model_versions"] = _jsonb(row["model_versions"], {})
    out["items"] = _jsonb(row["items"], [])
    out["explore"] = _jsonb(row["explore"], None)
    out["degraded"] = _jsonb(row["degraded"], [])
    out["constraints"] = _jsonb(row["payload"], {}).get("constraints", {})
    return out
