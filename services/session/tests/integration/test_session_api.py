"""Session memory and user features as the event-consumer stores them, read back over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest

from pickwise_common import redis as keys

pytestmark = pytest.mark.integration


async def _store_turns(pool, session_id: str, user_id: str, n: int) -> None:
    await pool.execute("INSERT INTO sessions (session_id, user_id) VALUES ($1, $2)", session_id, user_id)
    for turn in range(1, n + 1):
        await pool.execute(
            "INSERT INTO session_turns (session_id, turn_no, query, item_ids, parsed, request_id) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6)", session_id, turn, f"query {turn}", [f"i{turn}"],
            json.dumps({"price_max_inr": 1000 * turn}), f"r{turn}")


async def test_unknown_session_is_404(session_api) -> None:
    client, _ = session_api
    response = await client.get(f"/v1/sessions/nope-{uuid.uuid4().hex}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_session_turns_come_from_postgres_newest_last_with_constraints(session_api) -> None:
    client, app = session_api
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    await _store_turns(app.state.postgres, session_id, "u-1", 3)

    body = (await client.get(f"/v1/sessions/{session_id}", params={"limit": 2})).json()

    assert body["source"] == "postgres"
    assert [t["query"] for t in body["turns"]] == ["query 2", "query 3"]
    assert body["turns"][-1]["parsed"] == {"price_max_inr": 3000}
    assert body["user_id"] == "u-1"


async def test_session_is_served_from_the_redis_cache_when_present(session_api) -> None:
    client, app = session_api
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    cached = {"session_id": session_id, "user_id": "u-2", "turns": [
        {"turn_no": 1, "query": "phone under 20000", "item_ids": ["a"], "parsed": {"price_max_inr": 20000},
         "ts": datetime.now(UTC).isoformat()}]}
    await app.state.redis.set(keys.session_key(session_id), json.dumps(cached), ex=60)

    body = (await client.get(f"/v1/sessions/{session_id}")).json()

    assert body["source"] == "cache"
    assert body["turns"][0]["parsed"] == {"price_max_inr": 20000}


async def test_user_features_decay_affinities_to_now(session_api) -> None:
    client, app = session_api
    user = f"u-{uuid.uuid4().hex[:12]}"
    day_ago = time.time() - 24 * 3600
    await app.state.redis.rpush(keys.user_clicks_key(user), "i2", "i1")
    await app.state.redis.hset(keys.user_affinity_key(user), mapping={"brand:samsung": "2.0",
                                                                      "brand:samsung:t": str(day_ago)})

    body = (await client.get(f"/v1/users/{user}/features")).json()

    assert body["recent_clicks"] == ["i2", "i1"]
    assert body["affinities"]["brand:samsung"] == pytest.approx(1.0, rel=1e-3)


async def test_user_events_newest_first_filtered_by_type(session_api) -> None:
    client, app = session_api
    user = f"u-{uuid.uuid4().hex[:12]}"
    for minute, kind in enumerate(["click", "purchase", "click"]):
        await app.state.postgres.execute(
            "INSERT INTO events (event_id, type, user_id, item_id, ts) VALUES ($1, $2, $3, $4, $5)",
            uuid.uuid4(), kind, user, f"item-{minute}", datetime(2026, 1, 1, 0, minute, tzinfo=UTC))

    clicks = (await client.get(f"/v1/users/{user}/events", params={"type": "click"})).json()["events"]
    everything = (await client.get(f"/v1/users/{user}/events", params={"limit": 2})).json()["events"]

    assert [e["item_id"] for e in clicks] == ["item-2", "item-0"]
    assert [e["item_id"] for e in everything] == ["item-2", "item-1"]


async def test_user_events_and_features_of_one_catalog(session_api) -> None:
    client, app = session_api
    user = f"u-{uuid.uuid4().hex[:12]}"
    for minute, (catalog, item) in enumerate([("flipkart", "fm-1"), ("retail", "or-85123A"), ("retail", "or-22423")]):
        await app.state.postgres.execute(
            "INSERT INTO events (event_id, type, user_id, item_id, catalog, quantity, ts) "
            "VALUES ($1, 'purchase', $2, $3, $4, 6, $5)",
            uuid.uuid4(), user, item, catalog, datetime(2026, 1, 1, 0, minute, tzinfo=UTC))
    await app.state.redis.rpush(keys.user_clicks_key(user, "retail"), "or-85123A")

    retail = (await client.get(f"/v1/users/{user}/events", params={"catalog": "retail", "type": "purchase"})).json()
    every = (await client.get(f"/v1/users/{user}/events")).json()
    features = (await client.get(f"/v1/users/{user}/features", params={"catalog": "retail"})).json()
    default_features = (await client.get(f"/v1/users/{user}/features")).json()

    assert [(e["item_id"], e["catalog"], e["quantity"]) for e in retail["events"]] == [
        ("or-22423", "retail", 6), ("or-85123A", "retail", 6)]
    assert len(every["events"]) == 3
    assert features["recent_clicks"] == ["or-85123A"] and default_features["recent_clicks"] == []


async def test_unknown_catalog_is_404_naming_it(session_api) -> None:
    client, _ = session_api
    for path in ("/v1/users/u1/events", "/v1/users/u1/features"):
        response = await client.get(path, params={"catalog": "books"})
        assert response.status_code == 404
        assert response.json()["error"]["fields"][0]["field"] == "catalog"


async def test_bad_limit_and_type_name_the_field(session_api) -> None:
    client, _ = session_api
    response = await client.get("/v1/users/u1/events", params={"limit": 0, "type": "hover"})
    assert response.status_code == 422
    assert {f["field"] for f in response.json()["error"]["fields"]} == {"query.limit", "query.type"}


async def test_reads_never_block_the_event_loop(session_api, request) -> None:
    client, app = session_api
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    await _store_turns(app.state.postgres, session_id, "u-3", 2)
    request.getfixturevalue("no_blocking_io")  # from here on a blocking call fails the test

    responses = [await client.get(f"/v1/sessions/{session_id}"), await client.get("/v1/users/u-3/features"),
                 await client.get("/v1/users/u-3/events"), await client.get("/v1/sessions/unknown-x")]

    assert [r.status_code for r in responses] == [200, 200, 200, 404]
