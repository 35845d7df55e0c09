"""In-process event-consumer apps against the session's real broker, Redis and Postgres, on topics and a
consumer group of their own (so the shared stack's consumer never sees these messages)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from pickwise_common.kafka import JsonProducer, create_consumer, ensure_topics
from pickwise_common.settings import KafkaSettings
from pickwise_event_consumer.app import create_app
from pickwise_event_consumer.config import EventConsumerSettings
from pickwise_event_consumer.processor import Topics
from pickwise_event_consumer.retry_policy import RetryTopics


def make_topics(prefix: str, delay_s: float = 0.3) -> Topics:
    return Topics(interactions=f"{prefix}.interactions", sessions=f"{prefix}.sessions",
                  ladder=RetryTopics(stages=((f"{prefix}.retry.a", delay_s), (f"{prefix}.retry.b", delay_s),
                                             (f"{prefix}.retry.c", delay_s)), dlq=f"{prefix}.dlq"))


class ConsumerEnv:
    def __init__(self, infra: Any) -> None:
        cfg = infra.config
        self.prefix = f"it{uuid.uuid4().hex[:10]}"
        self.topics = make_topics(self.prefix)
        self.group = f"{self.prefix}-group"
        self.kafka = KafkaSettings(kafka_bootstrap=cfg.kafka_bootstrap)
        self.settings = EventConsumerSettings(
            kafka_bootstrap=cfg.kafka_bootstrap, redis_url=cfg.redis_url, postgres_url=cfg.postgres_url,
            consumer_group=self.group, log_json=False, topic_check_interval_s=1.0)
        self.redis = aioredis.Redis.from_url(cfg.redis_url, decode_responses=True)
        self.pool: asyncpg.Pool | None = None
        self.producer = JsonProducer(self.kafka, service="test")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Any]:
        """The event-consumer app with its lifespan running (consumer loops as tasks)."""
        app = create_app(self.settings, topics=self.topics)
        async with app.router.lifespan_context(app):
            yield app


@pytest.fixture
async def consumer_env(infra: Any) -> AsyncIterator[ConsumerEnv]:
    env = ConsumerEnv(infra)
    await ensure_topics(env.kafka, env.topics.all, partitions=2)
    env.pool = await asyncpg.create_pool(infra.config.postgres_url, min_size=1, max_size=3)
    await env.producer.start()
    try:
        yield env
    finally:
        await env.producer.stop()
        await env.pool.close()
        await env.redis.aclose()


async def wait_for(predicate: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60.0) -> None:
    """Poll until ``predicate`` holds; the bound only turns a hang into a failure naming what never came."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def read_topic(settings: KafkaSettings, topic: str, count: int, timeout_s: float = 60.0) -> list[Any]:
    """The first ``count`` records of a topic, through a consumer group of its own."""
    consumer = create_consumer(settings, [topic], group_id=f"reader-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    return wait_for


@pytest.fixture
def topic_records() -> Callable[..., Awaitable[list[Any]]]:
    return read_topic
