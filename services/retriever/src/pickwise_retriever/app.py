"""retriever service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app

from pickwise_retriever.config import RetrieverSettings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: RetrieverSettings = app.state.settings
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(resources.postgres_pool(app, settings))
        await stack.enter_async_context(resources.redis_client(app, settings, required=False))
        await stack.enter_async_context(resources.milvus_client(app, settings))
        yield


def create_app(settings: RetrieverSettings | None = None) -> FastAPI:
    settings = settings or RetrieverSettings()
    return service_app("retriever", settings, lifespan=lifespan, description="Query understanding, BM25 + dense retrieval, fusion, filters, item lookup.")
