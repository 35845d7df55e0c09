"""Impressions through the real embedded broker and Redis (decision 1001): a search's impression is on
``events.impressions`` with the shown ids, positions and request id, keyed by the user; the over-shown and
dismissed filter reads the user's keys in the real Redis; with the broker unreachable every impression is still
accounted for (dropped or error, none lost silently). The retriever and reranker are scripted over
``httpx.MockTransport``: what is under test is the gateway's path to the broker and Redis."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from pickwise_common import redis as rd
from pickwise_common.breaker import RetryPolicy
from pickwise_common.http import ServiceClient
from pickwise_common.kafka import TOPIC_IMPRESSIONS, client_options, decode_message
from pickwise_common.launcher.processes import free_port
from pickwise_common.settings import KafkaSettings
from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.impressions import IMPRESSIONS, OUTCOMES
from pickwise_gateway.recommendation import Recommender

pytestmark = pytest.mark.integration
KEY = "impressions-test-key"
IDS = [f"imp-{n}" for n in range(12)]


def _item(item_id: str) -> dict[str, Any]:
    return {"item_id": item_id, "title": f"Phone {item_id}", "brand": "samsung", "model": item_id,
            "price_inr": 15000.0, "price_band": "mid", "group_id": item_id}


def _downstream(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/v1/retrieve":
        body = json.loads(request.content)
        return httpx.Response(200, json={"query": body["query"], "mode": "hybrid", "parsed": {"brands": ["samsung"]},
                                         "candidates": [{"item": _item(i), "fused_score": 1 - n / 20}
                                                        for n, i in enumerate(IDS)]})
    if request.url.path == "/v1/rerank":
        body = json.loads(request.content)
        return httpx.Response(200, json={"items": [
            {"item": c["item"], "score": round(1 - r / 20, 4), "rank": r + 1}
            for r, c in enumerate(body["candidates"][:body["k"]])],
            "ranker_version": f"pickwise-ranker/1@{body['ranker_alias']}"})
    return httpx.Response(404, json={"error": {"code": "not_found", "message": request.url.path}})


def _clients() -> dict[str, ServiceClient]:
    return {t: ServiceClient(caller="gateway-test", target=t, base_url=f"http://{t}.test", timeout_ms=500,
                             retry=RetryPolicy(max_attempts=1, base_delay_ms=1),
                             transport=httpx.MockTransport(_downstream))
            for t in ("retriever", "reranker", "generator", "session")}


async def _gateway(bootstrap: str, infra: Any, **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = GatewaySettings(kafka_bootstrap=bootstrap, redis_url=infra.config.redis_url, api_keys=[KEY],
                               environment="local", log_json=False, rate_limit_per_minute=100_000,
                               kafka_delivery_timeout_ms=1000, kafka_request_timeout_ms=1000,
                               exploration_share=0.0, challenger_share=0.0, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.recommender = Recommender(settings, _clients(), app.state.redis)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                                     headers={"X-API-Key": KEY}) as client:
            yield client, app


@pytest.fixture
async def gateway(infra: Any) -> AsyncIterator[httpx.AsyncClient]:
    async for client, _ in _gateway(infra.config.kafka_bootstrap, infra):
        yield client


async def _impressions_on_topic(bootstrap: str, request_ids: set[str], timeout_s: float = 60.0) -> dict[str, Any]:
    # outside any consumer group: assigned partitions read from their start, no group join (~3 s) to wait for
    consumer = AIOKafkaConsumer(**client_options(KafkaSettings(kafka_bootstrap=bootstrap)),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    found: dict[str, Any] = {}
    try:
        await consumer.topics()  # fetches the metadata that partitions_for_topic reads
        numbers = sorted(consumer.partitions_for_topic(TOPIC_IMPRESSIONS) or ())
        consumer.assign([TopicPartition(TOPIC_IMPRESSIONS, n) for n in numbers])
        deadline = time.monotonic() + timeout_s
        while request_ids - set(found) and time.monotonic() < deadline:
            for part in (await consumer.getmany(timeout_ms=300, max_records=5000)).values():
                for record in part:
                    try:
                        body = decode_message(record.value)
                    except Exception:  # another test's poison on a shared topic is none of ours
                        continue
                    if body.get("request_id") in request_ids:
                        found.setdefault(body["request_id"], []).append((record.key, body))
    finally:
        await consumer.stop()
    return found


async def test_a_search_puts_one_impression_of_its_page_on_the_topic(gateway, infra) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    response = await gateway.get("/v1/search", params={"q": "samsung phone", "k": 5, "user_id": user})
    assert response.status_code == 200
    body = response.json()

    found = await _impressions_on_topic(infra.config.kafka_bootstrap, {body["request_id"]})
    [(key, impression)] = found[body["request_id"]]
    assert key == user.encode()
    assert (impression["endpoint"], impression["user_id"], impression["query"]) == ("search", user, "samsung phone")
    assert [(i["item_id"], i["position"]) for i in impression["items"]] == [
        (i["item_id"], i["rank"] - 1) for i in body["items"]] == [(i, n) for n, i in enumerate(IDS[:5])]
    assert impression["model_versions"] == {"ranker": "pickwise-ranker/1@champion"}
    assert impression["variant"] == body["variant"] and impression["status"] == 200


@pytest.fixture
async def shown_keys(infra: Any) -> AsyncIterator[tuple[str, aioredis.Redis]]:
    user = f"u-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(infra.config.redis_url, decode_responses=True)
    try:
        yield user, client
    finally:
        await client.delete(rd.user_shown_key(user, "flipkart"), rd.user_dismissed_key(user, "flipkart"))
        await client.aclose()


async def test_over_shown_and_dismissed_items_leave_the_users_search(gateway, shown_keys) -> None:
    user, redis = shown_keys
    await redis.hset(rd.user_shown_key(user, "flipkart"), mapping={"imp-0": 8, "imp-1": 30, "imp-2": 7})
    await redis.sadd(rd.user_dismissed_key(user, "flipkart"), "imp-3")

    mine = await gateway.get("/v1/search", params={"q": "samsung phone", "k": 5, "user_id": user})
    someone_else = await gateway.get("/v1/search", params={"q": "samsung phone", "k": 5, "user_id": "u-other"})

    assert [i["item_id"] for i in mine.json()["items"]] == ["imp-2", "imp-4", "imp-5", "imp-6", "imp-7"]
    assert [i["item_id"] for i in someone_else.json()["items"]] == IDS[:5]


def _outcomes() -> dict[str, float]:
    return {o: IMPRESSIONS.labels(o)._value.get() for o in OUTCOMES}


async def test_with_the_broker_unreachable_every_impression_is_counted(infra) -> None:
    before = _outcomes()
    async for client, _ in _gateway(f"127.0.0.1:{free_port()}", infra, impression_queue_max=2,
                                    impression_drain_s=0.5):
        for n in range(10):
            response = await client.get("/v1/search", params={"q": "samsung phone", "user_id": f"u{n}"})
            assert response.status_code == 200
    after = _outcomes()
    delta = {o: after[o] - before[o] for o in OUTCOMES}
    assert delta["published"] == 0
    assert delta["dropped_queue_full"] + delta["error"] == 10
