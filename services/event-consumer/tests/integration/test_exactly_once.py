"""Exactly-once effect of an interaction over the real broker, Redis and Postgres: redeliveries, a
restart of the consumer mid-stream and a crash between the two writes leave one row and one increment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from pickwise_common import redis as keys
from pickwise_common.features import affinity_field
from pickwise_common.kafka import encode_message
from pickwise_common.schemas import InteractionEvent
from pickwise_event_consumer import event_log
from pickwise_event_consumer.feature_update import FeatureParams, FeatureWriter

pytestmark = pytest.mark.integration


def _click(user: str, item: str) -> InteractionEvent:
    return InteractionEvent(event_id=uuid.uuid4(), type="click", ts=datetime.now(UTC), user_id=user, item_id=item)


async def _row_count(env, event_id: uuid.UUID) -> int:
    return await env.pool.fetchval("SELECT count(*) FROM events WHERE event_id = $1", event_id)


async def test_same_event_five_times_with_a_restart_applies_once(consumer_env, eventually) -> None:
    env = consumer_env
    item = f"{env.prefix}-item"
    await env.redis.hset(keys.item_key(item), mapping={"brand": "Samsung", "category": "mobile", "group_id": "g1"})
    event = _click(f"{env.prefix}-user", item)
    body = event.model_dump(mode="json")

    async with env.running() as first:
        for _ in range(2):
            await env.producer.send(env.topics.interactions, body, key=event.user_id)

        async def first_took_both() -> bool:
            return first.state.consumer_loops[0].state.records >= 2
        await eventually(first_took_both, "the first consumer processed both copies")
    # the consumer was stopped mid-stream; three more copies arrive while it is down
    for _ in range(3):
        await env.producer.send(env.topics.interactions, body, key=event.user_id)
    async with env.running() as second:
        async def second_took_the_rest() -> bool:
            return second.state.consumer_loops[0].state.records >= 3
        await eventually(second_took_the_rest, "the restarted consumer processed the three later copies")
        # the first consumer committed what it had processed before it stopped: nothing of it came again
        assert second.state.consumer_loops[0].state.records == 3

    assert await _row_count(env, event.event_id) == 1
    assert await env.redis.zscore(keys.POPULARITY_ALL_KEY, item) == pytest.approx(1.0)
    assert await env.redis.zscore(keys.popularity_hour_key(event.ts), item) == pytest.approx(1.0)
    processed = {outcome: REGISTRY.get_sample_value("pickwise_events_processed_total",
                                                    {"topic": env.topics.interactions, "outcome": outcome})
                 for outcome in ("applied", "duplicate")}
    assert processed == {"applied": 1.0, "duplicate": 4.0}
    assert await env.redis.lrange(keys.user_clicks_key(event.user_id), 0, -1) == [item]
    affinity = await env.redis.hget(keys.user_affinity_key(event.user_id), affinity_field("brand", "Samsung"))
    assert float(affinity) == pytest.approx(1.0, rel=1e-3)


async def test_crash_after_postgres_before_redis_still_applies_redis_once(consumer_env) -> None:
    env = consumer_env
    params = FeatureParams(half_life_h=24, clicks_cap=50, seen_ttl_s=600, pop_hour_ttl_s=600, user_ttl_s=600)
    writer = FeatureWriter(env.redis, params)
    item = f"{env.prefix}-crash-item"
    event = _click(f"{env.prefix}-crash-user", item)
    # the first delivery wrote Postgres, then the process died before the Redis script ran
    assert await event_log.insert_events(env.pool, [event]) == {str(event.event_id)}

    assert await event_log.insert_events(env.pool, [event]) == set()  # the redelivery: no second row
    assert await writer.apply([event]) == [True]
    assert await writer.apply([event, event]) == [False, False]  # later redeliveries change nothing

    assert await _row_count(env, event.event_id) == 1
    assert await env.redis.zscore(keys.POPULARITY_ALL_KEY, item) == pytest.approx(1.0)


async def test_affinity_decays_with_a_24h_half_life(consumer_env) -> None:
    env = consumer_env
    writer = FeatureWriter(env.redis, FeatureParams(half_life_h=24, clicks_cap=3, seen_ttl_s=600,
                                                    pop_hour_ttl_s=600, user_ttl_s=600))
    user, item = f"{env.prefix}-decay-user", f"{env.prefix}-decay-item"
    await env.redis.hset(keys.item_key(item), mapping={"brand": " Redmi ", "category": "Mobile"})
    now = 1_800_000_000.0
    await writer.apply([_click(user, item)], now_s=now)
    await writer.apply([_click(user, item)], now_s=now + 24 * 3600)

    raw = await env.redis.hgetall(keys.user_affinity_key(user))
    assert float(raw["brand:redmi"]) == pytest.approx(1.5, rel=1e-6)
    assert float(raw["category:mobile"]) == pytest.approx(1.5, rel=1e-6)
    assert float(raw["brand:redmi:t"]) == pytest.approx(now + 24 * 3600)


async def test_click_list_is_capped_newest_first_without_repeats(consumer_env) -> None:
    env = consumer_env
    writer = FeatureWriter(env.redis, FeatureParams(half_life_h=24, clicks_cap=3, seen_ttl_s=600,
                                                    pop_hour_ttl_s=600, user_ttl_s=600))
    user = f"{env.prefix}-cap-user"
    for item in ["a", "b", "c", "a", "d"]:
        await writer.apply([_click(user, f"{env.prefix}-{item}")])

    assert await env.redis.lrange(keys.user_clicks_key(user), 0, -1) == [
        f"{env.prefix}-d", f"{env.prefix}-a", f"{env.prefix}-c"]


def _record(topic: str, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(topic=topic, partition=0, offset=0, timestamp=0, timestamp_type=0, key=None,
                          value=value, checksum=None, serialized_key_size=0, serialized_value_size=len(value),
                          headers=())


async def test_session_turn_redelivered_is_stored_once_with_its_constraints(consumer_env) -> None:
    env = consumer_env
    session_id = f"{env.prefix}-sess"
    message = {"event_id": str(uuid.uuid4()), "session_id": session_id, "user_id": "u1", "request_id": "r-1",
               "query": "phone under 20000", "item_ids": ["i1", "i2"], "parsed": {"price_max_inr": 20000},
               "variant": "A", "ts": datetime.now(UTC).isoformat()}
    async with env.running() as app:
        processor_loop = app.state.consumer_loops[0]
        for _ in range(2):
            await processor_loop.handler([_record(env.topics.sessions, encode_message(message))])

    rows = await env.pool.fetch("SELECT turn_no, parsed FROM session_turns WHERE session_id = $1", session_id)
    assert [r["turn_no"] for r in rows] == [1]
    cached = await env.redis.get(keys.session_key(session_id))
    assert '"price_max_inr": 20000' in cached
