"""The shared event-log row mapping, and the Postgres pool's timeouts taken from settings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from pickwise_common.event_log_rows import event_from_row, impression_from_row, turn_from_row
from pickwise_common.postgres import pool_options
from pickwise_common.settings import PostgresSettings

pytestmark = pytest.mark.unit
TS = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


def test_turn_row_decodes_parsed_json_and_iso_time() -> None:
    row = {"turn_no": 2, "query": "q", "item_ids": None, "answer": None, "variant": "B",
           "parsed": '{"price_max": 15000}', "request_id": "r1", "ts": TS}
    assert turn_from_row(row) == {"turn_no": 2, "query": "q", "item_ids": [], "answer": None, "variant": "B",
                                  "parsed": {"price_max": 15000}, "request_id": "r1", "ts": TS.isoformat()}


def test_event_row_has_string_id_and_iso_times() -> None:
    event_id = uuid.UUID(int=5)
    out = event_from_row({"event_id": event_id, "type": "click", "ts": TS, "received_at": TS})
    assert out == {"event_id": str(event_id), "type": "click", "ts": TS.isoformat(), "received_at": TS.isoformat()}


def test_impression_row_decodes_jsonb_and_lifts_constraints_from_payload() -> None:
    event_id = uuid.UUID(int=6)
    row = {"event_id": event_id, "request_id": "r1", "ts": TS, "received_at": TS, "endpoint": "feed",
           "catalog": "retail", "user_id": "u1", "session_id": None, "query": None, "experiment": None,
           "variant": "A", "interleaving": False, "latency_ms": 12.5, "status": 200,
           "model_versions": '{"cf": "cf-v1"}', "items": '[{"item_id": "i1", "position": 0, "score": 0.5}]',
           "explore": None, "degraded": "[]", "payload": '{"constraints": {"brands": ["apple"]}}'}
    out = impression_from_row(row)
    assert (out["event_id"], out["type"], out["ts"]) == (str(event_id), "impression", TS.isoformat())
    assert out["model_versions"] == {"cf": "cf-v1"}
    assert out["items"] == [{"item_id": "i1", "position": 0, "score": 0.5}]
    assert (out["explore"], out["degraded"], out["constraints"]) == (None, [], {"brands": ["apple"]})


def test_postgres_connect_timeout_comes_from_settings_not_asyncpg_default() -> None:
    options = pool_options(PostgresSettings(postgres_connect_timeout_ms=750, postgres_timeout_ms=1500))
    assert (options["timeout"], options["command_timeout"]) == (0.75, 1.5)
