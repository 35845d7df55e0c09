"""event-consumer service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app

from pickwise_event_consumer.config import EventConsumerSettings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: EventConsumerSettings = app.state.settings
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(resources.postgres_pool(app, settings))
        await stack.enter_async_context(resources.redis_client(app, settings))
        await stack.enter_async_context(resources.kafka_producer(app, settings, service="event-consumer"))
        yield


def create_app(settings: EventConsumerSettings | None = None) -> FastAPI:
    settings = settings or EventConsumerSettings()
    return service_app("event-consumer", settings, lifespan=lifespan, description="Kafka consumers to Redis features and the Postgres event log; retry topics and DLQ.")
