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
