"""gateway service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app

from pickwise_gateway.config import GatewaySettings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: GatewaySettings = app.state.settings
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            resources.kafka_producer(app, settings, service="gateway", required=False))
        await stack.enter_async_context(resources.service_clients(
            app, settings, caller="gateway", targets=("retriever", "reranker", "generator", "session")))
        yield


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    return service_app("gateway", settings, lifespan=lifespan, description="Public REST API, web page, auth, orchestration and event publishing.")
