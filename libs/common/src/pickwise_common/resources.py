"""Lifespan resources: each opens one client per process, registers its readiness check, stores it on
``app.state`` and closes it on shutdown. A service's lifespan is a few ``enter_async_context`` lines."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from pickwise_common import postgres as pg
from pickwise_common import redis as rd
from pickwise_common.breaker import CircuitBreaker, RetryPolicy
from pickwise_common.http import ServiceClient
from pickwise_common.kafka import JsonProducer
from pickwise_common.metrics import POOLS
from pickwise_common.settings import (
    DownstreamSettings,
    KafkaSettings,
    MilvusSettings,
    PostgresSettings,
    RedisSettings,
)

log = logging.getLogger("pickwise.resources")


@asynccontextmanager
async def redis_client(app: FastAPI, settings: RedisSettings, *, required: bool = True) -> AsyncIterator[Any]:
    client = rd.create_redis(settings)
    app.state.redis = client
    app.state.readiness.add("redis", lambda: rd.ping(client), required=required)
    POOLS.track_redis(getattr(app.state, "service_name", "pickwise"), client)
    try:
        yield client
    finally:
        POOLS.forget(getattr(app.state, "service_name", "pickwise"), "redis")
        await client.aclose()


@asynccontextmanager
async def postgres_pool(app: FastAPI, settings: PostgresSettings, *, migrate: bool = True) -> AsyncIterator[Any]:
    """Migrations are applied at start-up (idempotent, under an advisory lock)."""
    pool = await pg.create_pool(settings, migrate=migrate)
    app.state.postgres = pool
    app.state.readiness.add("postgres", lambda: pg.ping(pool))
    POOLS.track_postgres(getattr(app.state, "service_name", "pickwise"), pool)
    try:
        yield pool
    finally:
        POOLS.forget(getattr(app.state, "service_name", "pickwise"), "postgres")
        await pool.close()


@asynccontextmanager
async def kafka_producer(app: FastAPI, settings: KafkaSettings, *, service: str, required: bool = True,
                         repair_topics: tuple[str, ...] = ()) -> AsyncIterator[JsonProducer]:
    producer = JsonProducer(settings, service=service, repair_topics=repair_topics)
    await producer.start()
    app.state.producer = producer
    app.state.readiness.add("kafka", producer.ping, required=required)
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def milvus_client(app: FastAPI, settings: MilvusSettings) -> AsyncIterator[Any]:
    """pymilvus is synchronous: calls go through a thread (``anyio.to_thread.run_sync``)."""
    import anyio
    from pymilvus import MilvusClient

    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    client = await anyio.to_thread.run_sync(lambda: MilvusClient(uri=settings.milvus_uri, token=token))

    async def check() -> dict[str, Any]:
        names = await anyio.to_thread.run_sync(client.list_collections)
        return {"collections": len(names)}

    app.state.milvus = client
    app.state.readiness.add("milvus", check)
    try:
        yield client
    finally:
        await anyio.to_thread.run_sync(client.close)


@asynccontextmanager
async def service_clients(app: FastAPI, settings: DownstreamSettings, *, caller: str,
                          targets: tuple[str, ...]) -> AsyncIterator[dict[str, ServiceClient]]:
    """One pooled client (with its own circuit breaker) per downstream service."""
    clients = {
        target: ServiceClient(caller=caller, target=target,
                              base_url=getattr(settings, f"{target.replace('-', '_')}_url"),
                              timeout_ms=settings.http_timeout_ms,
                              retry=RetryPolicy(max_attempts=settings.http_retries + 1),
                              breaker=CircuitBreaker(name=target),
                              max_connections=settings.http_max_connections,
                              max_in_flight=settings.http_max_in_flight)
        for target in targets
    }
    app.state.clients = clients
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
