"""reranker service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app

from pickwise_reranker.config import RerankerSettings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: RerankerSettings = app.state.settings
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(resources.redis_client(app, settings, required=False))
        yield


def create_app(settings: RerankerSettings | None = None) -> FastAPI:
    settings = settings or RerankerSettings()
    return service_app("reranker", settings, lifespan=lifespan, description="Cross-encoder, learned ranker and real-time behaviour boost.")
