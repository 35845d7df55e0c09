"""Failures over the real broker: a poison message goes straight to the DLQ with its reason and the
consumer keeps going; an event that keeps failing climbs the retry topics, then lands in the DLQ."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from pickwise_common.kafka import headers_dict
from pickwise_common.schemas import InteractionEvent

pytestmark = pytest.mark.integration


async def test_poison_message_is_dead_lettered_with_reason_and_consumption_goes_on(
        consumer_env, eventually, topic_records) -> None:
    env = consumer_env
    good = InteractionEvent(event_id=uuid.uuid4(), type="view", ts=datetime.now(UTC), user_id="poison-u",
                            item_id="poison-i")
    async with env.running():
        await env.producer.send_raw(env.topics.interactions, b"{this is not json", key=b"poison-u")
        await env.producer.send(env.topics.interactions, good.model_dump(mode="json"), key="poison-u")

        async def good_event_stored() -> bool:
            return await env.pool.fetchval("SELECT count(*) FROM events WHERE event_id = $1", good.event_id) == 1
        await eventually(good_event_stored, "the event after the poison message was stored")

    dead = await topic_records(env.kafka, env.topics.ladder.dlq, 1)
    assert [r.value for r in dead] == [b"{this is not json"]
    headers = headers_dict(dead[0].headers)
    assert headers["pickwise-dlq-reason"].startswith("invalid_message: value is not JSON")
    assert headers["pickwise-origin-topic"] == env.topics.interactions


async def test_event_that_keeps_failing_climbs_the_retry_topics_into_the_dlq(
        consumer_env, eventually, topic_records, topic_sizes) -> None:
    env = consumer_env
    # Postgres refuses NUL characters in text: this event fails on every attempt
    bad = InteractionEvent(event_id=uuid.uuid4(), type="click", ts=datetime.now(UTC), user_id="bad\u0000user",
                           item_id="i-bad")
    async with env.running():
        await env.producer.send(env.topics.interactions, bad.model_dump(mode="json"), key="bad-user")
        dead = await topic_records(env.kafka, env.topics.ladder.dlq, 1, timeout_s=90)

    headers = headers_dict(dead[0].headers)
    assert headers["pickwise-attempt"] == "4"
    assert headers["pickwise-dlq-reason"] == "retries exhausted"
    assert "0x00" in headers["pickwise-error"] or "\\u0000" in headers["pickwise-error"]
    stages = [topic for topic, _ in env.topics.ladder.stages]
    assert await topic_sizes(env.kafka, stages) == dict.fromkeys(stages, 1)  # one pass through each stage
