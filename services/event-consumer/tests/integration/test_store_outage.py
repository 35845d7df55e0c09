"""A store outage longer than the retry ladder: the consumer pauses and backs off instead of dead-lettering,
and applies the waiting events once the store is back (Redis of the test's own, stopped and restarted)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from pickwise_common import redis as keys
from pickwise_common.schemas import ImpressionEvent, ImpressionItem, InteractionEvent

pytestmark = pytest.mark.integration


async def test_redis_down_longer_than_the_ladder_pauses_instead_of_dead_lettering(
        consumer_env, own_redis, eventually, topic_sizes) -> None:
    env = consumer_env
    env.settings = env.settings.model_copy(update={"redis_url": own_redis.url, "store_backoff_initial_ms": 100,
                                                   "store_backoff_max_ms": 400})
    event = InteractionEvent(event_id=uuid.uuid4(), type="click", ts=datetime.now(UTC),
                             user_id=f"{env.prefix}-user", item_id=f"{env.prefix}-item")
    async with env.running() as app:
        main = app.state.consumer_loops[0]
        own_redis.stop()
        await env.producer.send(env.topics.interactions, event.model_dump(mode="json"), key=event.user_id)

        # the ladder of this test takes 3 x 0.3 s; keep Redis down for several back-offs well past it
        async def paused_repeatedly() -> bool:
            return main.state.store_pauses >= 6
        await eventually(paused_repeatedly, "the consumer paused again and again while Redis was down")
        own_redis.start()

        async def applied() -> bool:
            client = aioredis.Redis.from_url(own_redis.url, decode_responses=True)
            try:
                return await client.lrange(keys.user_clicks_key(event.user_id), 0, -1) == [event.item_id]
            finally:
                await client.aclose()
        await eventually(applied, "the click applied once Redis was back")

    assert await env.pool.fetchval("SELECT count(*) FROM events WHERE event_id = $1", event.event_id) == 1
    assert await topic_sizes(env.kafka, env.topics.ladder.names) == dict.fromkeys(env.topics.ladder.names, 0)


async def test_impressions_wait_for_redis_instead_of_dead_lettering(
        consumer_env, own_redis, eventually, topic_sizes) -> None:
    env = consumer_env
    env.settings = env.settings.model_copy(update={"redis_url": own_redis.url, "store_backoff_initial_ms": 100,
                                                   "store_backoff_max_ms": 400})
    event = ImpressionEvent(request_id=f"{env.prefix}-r", endpoint="search", user_id=f"{env.prefix}-user",
                            items=[ImpressionItem(item_id="i-1", position=0)])
    async with env.running() as app:
        impressions_loop = next(loop for loop in app.state.consumer_loops if loop.name == "impressions")
        own_redis.stop()
        await env.producer.send(env.topics.impressions, event.model_dump(mode="json"), key=event.user_id)

        async def paused_repeatedly() -> bool:
            return impressions_loop.state.store_pauses >= 6
        await eventually(paused_repeatedly, "the impressions loop paused again and again while Redis was down")
        own_redis.start()

        async def counted() -> bool:
            client = aioredis.Redis.from_url(own_redis.url, decode_responses=True)
            try:
                return await client.hgetall(keys.user_shown_key(event.user_id)) == {"i-1": "1"}
            finally:
                await client.aclose()
        await eventually(counted, "the impression counted once Redis was back")

    assert await env.pool.fetchval("SELECT count(*) FROM impressions WHERE event_id = $1", event.event_id) == 1
    assert await topic_sizes(env.kafka, env.topics.ladder.names) == dict.fromkeys(env.topics.ladder.names, 0)
