"""Impressions as the event-consumer stores them, read back with ``GET /v1/users/{id}/events?type=impression``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.integration

INSERT = """
INSERT INTO impressions (event_id, request_id, ts, endpoint, catalog, user_id, session_id, query, variant,
                         model_versions, items, explore, latency_ms, degraded, payload)
VALUES ($1, $2, $3, $4, $5, $6, 's1', $7, 'B', $8::jsonb, $9::jsonb, $10::jsonb, 42.0, '[]'::jsonb, $11::jsonb)
"""


async def _store(pool, user: str, minute: int, *, catalog: str = "flipkart", explore: dict | None = None) -> str:
    request_id = f"req-{minute}-{uuid.uuid4().hex[:6]}"
    items = [{"item_id": f"i{minute}-{n}", "position": n, "score": 1.0 - n / 10} for n in range(3)]
    await pool.execute(INSERT, uuid.uuid4(), request_id, datetime(2026, 1, 1, 0, minute, tzinfo=UTC), "search",
                       catalog, user, f"query {minute}", json.dumps({"ranker": "pickwise-ranker/3@champion"}),
                       json.dumps(items), json.dumps(explore) if explore else None,
                       json.dumps({"constraints": {"price_max": 20000}}))
    return request_id


async def test_user_impressions_newest_first_with_positions_scores_and_versions(session_api) -> None:
    client, app = session_api
    user = f"u-{uuid.uuid4().hex[:12]}"
    first = await _store(app.state.postgres, user, 0)
    second = await _store(app.state.postgres, user, 1, explore={"pair": 0, "swapped": 1})
    await app.state.postgres.execute(  # an interaction of the same user is not an impression
        "INSERT INTO events (event_id, type, user_id, item_id, request_id, ts) VALUES ($1, 'click', $2, 'i1-0', $3, "
        "now())", uuid.uuid4(), user, second)

    response = await client.get(f"/v1/users/{user}/events", params={"type": "impression"})

    assert response.status_code == 200
    events = response.json()["events"]
    assert [e["request_id"] for e in events] == [second, first]
    newest = events[0]
    assert (newest["type"], newest["endpoint"], newest["variant"], newest["query"], newest["latency_ms"]) == (
        "impression", "search", "B", "query 1", 42.0)
    assert newest["model_versions"] == {"ranker": "pickwise-ranker/3@champion"}
    assert [(i["item_id"], i["position"], i["score"]) for i in newest["items"]] == [
        ("i1-0", 0, 1.0), ("i1-1", 1, 0.9), ("i1-2", 2, 0.8)]
    assert newest["explore"] == {"pair": 0, "swapped": 1} and events[1]["explore"] is None
    assert newest["constraints"] == {"price_max": 20000}
    assert newest["ts"].startswith("2026-01-01T00:01")


async def test_user_impressions_limit_and_catalog(session_api) -> None:
    client, app = session_api
    user = f"u-{uuid.uuid4().hex[:12]}"
    for minute, catalog in enumerate(["flipkart", "retail", "retail"]):
        await _store(app.state.postgres, user, minute, catalog=catalog)

    retail = (await client.get(f"/v1/users/{user}/events",
                               params={"type": "impression", "catalog": "retail", "limit": 1})).json()["events"]
    every = (await client.get(f"/v1/users/{user}/events", params={"type": "impression"})).json()["events"]
    clicks = (await client.get(f"/v1/users/{user}/events", params={"type": "click"})).json()["events"]

    assert [(e["catalog"], e["query"]) for e in retail] == [("retail", "query 2")]
    assert len(every) == 3
    assert clicks == []


async def test_impression_type_is_documented_in_openapi(session_api) -> None:
    client, _ = session_api
    spec = (await client.get("/openapi.json")).json()

    schemas = spec["components"]["schemas"]
    assert "impression" in schemas["EventLogType"]["enum"]
    assert {"request_id", "items", "model_versions", "explore", "variant"} <= set(
        schemas["StoredImpression"]["properties"])
