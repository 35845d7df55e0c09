"""Event ingestion through an in-process gateway against the real embedded broker: 202 only after the
broker's ack (the message is there, keyed by user, with the trace context), 422 naming the field, 503 +
Retry-After when the broker cannot be reached, per-event results for batches."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from pickwise_common import redis as rd
from pickwise_common.kafka import TOPIC_INTERACTIONS, client_options, decode_message, headers_dict
from pickwise_common.launcher.processes import free_port
from pickwise_common.settings import KafkaSettings
from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings

pytestmark = pytest.mark.integration
KEY = "events-test-key"


async def _client(bootstrap: str, infra: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(kafka_bootstrap=bootstrap, redis_url=infra.config.redis_url, api_keys=[KEY],
                               environment="local", log_json=False, rate_limit_per_minute=100_000,
                               kafka_delivery_timeout_ms=1000, kafka_request_timeout_ms=1000)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                                     headers={"X-API-Key": KEY}) as client:
            yield client


# the catalog ids these tests post events about (ingest writes item:<id> for every catalog item)
CATALOG_IDS = ("i", "i-1", "i0", "i1", "i2")


@pytest.fixture(autouse=True)
async def catalog_items(infra: Any) -> AsyncIterator[None]:
    client = aioredis.Redis.from_url(infra.config.redis_url, decode_responses=True)
    for item_id in CATALOG_IDS:
        await client.hset(rd.item_key(item_id), mapping={"brand": "testbrand", "category": "mobiles"})
    try:
        yield
    finally:
        await client.delete(*[rd.item_key(i) for i in CATALOG_IDS])
        await client.aclose()


@pytest.fixture
async def gateway(infra: Any) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(infra.config.kafka_bootstrap, infra):
        yield client


@pytest.fixture
async def gateway_without_broker(infra: Any) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(f"127.0.0.1:{free_port()}", infra):
        yield client


async def _find_on_topic(bootstrap: str, event_ids: set[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """The records carrying these event ids (read from the topic's start)."""
    # outside any consumer group: assigned partitions read from their start, no group join (~3 s) to wait for
    consumer = AIOKafkaConsumer(**client_options(KafkaSettings(kafka_bootstrap=bootstrap)),
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    found: dict[str, Any] = {}
    try:
        await consumer.topics()  # fetches the metadata that partitions_for_topic reads
        numbers = sorted(consumer.partitions_for_topic(TOPIC_INTERACTIONS) or ())
        consumer.assign([TopicPartition(TOPIC_INTERACTIONS, n) for n in numbers])
        deadline = time.monotonic() + timeout_s
        while event_ids - set(found) and time.monotonic() < deadline:
            for part in (await consumer.getmany(timeout_ms=300, max_records=5000)).values():
                for record in part:
                    try:
                        body = decode_message(record.value)
                    except Exception:  # other tests put poison on the shared topic
                        continue
                    if body.get("event_id") in event_ids:
                        found[body["event_id"]] = record
    finally:
        await consumer.stop()
    return found


async def test_click_is_acknowledged_after_the_broker_has_it(gateway, infra) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    response = await gateway.post("/v1/events/click", json={"user_id": user, "item_id": "i-1", "position": 6,
                                                           "source": "search"},
                                  headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    assert response.status_code == 202
    event_id = response.json()["event_id"]
    uuid.UUID(event_id)

    record = (await _find_on_topic(infra.config.kafka_bootstrap, {event_id}))[event_id]
    body = decode_message(record.value)
    assert record.key == user.encode()
    assert (body["type"], body["user_id"], body["position"], body["schema_version"]) == ("click", user, 6, 1)
    assert headers_dict(record.headers)["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


async def test_client_event_id_is_kept_so_retries_are_safe(gateway) -> None:
    event_id = str(uuid.uuid4())
    body = {"event_id": event_id, "type": "add_to_cart", "user_id": "u1", "item_id": "i1"}
    first = await gateway.post("/v1/events", json=body)
    second = await gateway.post("/v1/events", json=body)
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["event_id"] == second.json()["event_id"] == event_id


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "hover", "user_id": "u", "item_id": "i"}, "body.type"),
    ({"type": "click", "user_id": "", "item_id": "i"}, "body.user_id"),
    ({"type": "click", "user_id": "u", "item_id": "x" * 129}, "body.item_id"),
    ({"type": "click", "user_id": "u", "item_id": "i", "position": -1}, "body.position"),
    ({"type": "click", "user_id": "u", "item_id": "i",
      "ts": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, "body.ts"),
    ({"type": "click", "user_id": "u", "item_id": "i", "event_id": "not-a-uuid"}, "body.event_id"),
    ({"type": "click", "user_id": "u", "item_id": "i", "colour": "red"}, "body.colour"),
])
async def test_invalid_event_is_422_naming_the_field(gateway, body: dict[str, Any], field: str) -> None:
    response = await gateway.post("/v1/events", json=body)
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


async def test_events_need_an_api_key(gateway) -> None:
    response = await gateway.post("/v1/events/click", json={"user_id": "u", "item_id": "i"},
                                  headers={"X-API-Key": "wrong"})
    assert response.status_code == 401


async def test_batch_reports_each_event(gateway) -> None:
    events = [{"type": "view", "user_id": "u-b", "item_id": f"i{n}"} for n in range(3)]
    events.insert(1, {"type": "view", "user_id": "u-b", "item_id": "i", "position": -5})
    response = await gateway.post("/v1/events:batch", json={"events": events})
    body = response.json()
    assert response.status_code == 207
    assert [r["status"] for r in body["results"]] == ["accepted", "invalid", "accepted", "accepted"]
    assert body["results"][1]["fields"][0]["field"] == "events.1.position"
    assert (body["accepted"], body["rejected"], body["unavailable"]) == (3, 1, 0)


async def test_batch_of_valid_events_is_202_and_over_500_is_422(gateway) -> None:
    ok = await gateway.post("/v1/events:batch",
                            json={"events": [{"type": "view", "user_id": "u", "item_id": "i"}] * 2})
    too_many = await gateway.post("/v1/events:batch",
                                  json={"events": [{"type": "view", "user_id": "u", "item_id": "i"}] * 501})
    assert ok.status_code == 202 and ok.json()["accepted"] == 2
    assert too_many.status_code == 422
    assert too_many.json()["error"]["fields"][0]["field"] == "body.events"


async def test_unreachable_broker_is_503_with_retry_after(gateway_without_broker) -> None:
    response = await gateway_without_broker.post("/v1/events/click", json={"user_id": "u", "item_id": "i"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "dependency_unavailable"
    batch = await gateway_without_broker.post("/v1/events:batch",
                                              json={"events": [{"type": "view", "user_id": "u", "item_id": "i"}]})
    assert batch.status_code == 503


async def test_503_names_the_event_id_so_a_retry_is_not_a_duplicate(gateway_without_broker) -> None:
    response = await gateway_without_broker.post("/v1/events/click", json={"user_id": "u", "item_id": "i"})
    given = str(uuid.uuid4())
    with_id = await gateway_without_broker.post("/v1/events", json={"event_id": given, "type": "view",
                                                                    "user_id": "u", "item_id": "i"})
    assert response.status_code == with_id.status_code == 503
    generated = response.json()["error"]["event_id"]
    assert uuid.UUID(generated) and response.headers["X-Event-ID"] == generated
    assert with_id.json()["error"]["event_id"] == with_id.headers["X-Event-ID"] == given


async def test_batch_503_gives_each_event_id_in_order(gateway_without_broker) -> None:
    given = str(uuid.uuid4())
    events = [{"type": "view", "user_id": "u", "item_id": "i"}, {"type": "hover", "user_id": "u", "item_id": "i"},
              {"event_id": given, "type": "view", "user_id": "u", "item_id": "i1"}]
    response = await gateway_without_broker.post("/v1/events:batch", json={"events": events})
    assert response.status_code == 503
    ids = response.json()["error"]["event_ids"]
    assert len(ids) == 3 and uuid.UUID(ids[0]) and ids[1] is None and ids[2] == given


async def test_event_for_an_unknown_item_is_422_naming_item_id(gateway) -> None:
    single = await gateway.post("/v1/events", json={"type": "click", "user_id": "u", "item_id": "no-such-item"})
    click = await gateway.post("/v1/events/click", json={"user_id": "u", "item_id": "no-such-item"})
    assert (single.status_code, click.status_code) == (422, 422)
    assert [f["field"] for f in single.json()["error"]["fields"]] == ["body.item_id"]
    assert "no-such-item" in click.json()["error"]["message"]


async def test_batch_marks_events_for_unknown_items_invalid(gateway) -> None:
    events = [{"type": "view", "user_id": "u", "item_id": "i0"}, {"type": "view", "user_id": "u", "item_id": "nope"}]
    response = await gateway.post("/v1/events:batch", json={"events": events})
    body = response.json()
    assert response.status_code == 207
    assert [r["status"] for r in body["results"]] == ["accepted", "invalid"]
    assert body["results"][1]["fields"][0]["field"] == "events.1.item_id"


async def test_ingestion_never_blocks_the_event_loop(gateway) -> None:
    from blockbuster import blockbuster_ctx

    await gateway.post("/v1/events/click", json={"user_id": "u-warm", "item_id": "i"})  # connections opened
    with blockbuster_ctx():
        single = await gateway.post("/v1/events/click", json={"user_id": "u-bb", "item_id": "i"})
        batch = await gateway.post("/v1/events:batch",
                                   json={"events": [{"type": "view", "user_id": "u-bb", "item_id": "i"}] * 20})
    assert (single.status_code, batch.status_code) == (202, 202)
