"""retriever service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app
from pickwise_common.embeddings import Embedder
from pickwise_retriever import api
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.config import RetrieverSettings
from pickwise_retriever.popularity import Popularity
from pickwise_retriever.query_parser import parse_query
from pickwise_retriever.retrieval import Retriever

log = logging.getLogger("pickwise.retriever")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: RetrieverSettings = app.state.settings
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(resources.postgres_pool(app, settings))
        redis = await stack.enter_async_context(resources.redis_client(app, settings, required=False))
        milvus = await stack.enter_async_context(resources.milvus_client(app, settings))
        catalog = await Catalog.load(pool)
        version = await Catalog.version(pool)
        import torch

        torch.set_num_threads(settings.embedding_threads)
        embedder = Embedder(settings.embedding_model, batch_size=settings.embedding_batch_size,
                            cache_size=settings.query_cache_size)
        await anyio.to_thread.run_sync(embedder.encode_query, "phone")  # load the model before serving
        # the parser's word lists (the typo guard reads an English frequency list) load now, not on a query
        await anyio.to_thread.run_sync(parse_query, "samsung phone under 15k")
        if len(catalog) and await anyio.to_thread.run_sync(milvus.has_collection, settings.milvus_collection):
            await anyio.to_thread.run_sync(milvus.load_collection, settings.milvus_collection)
        app.state.retriever = Retriever(catalog, embedder, milvus, settings.milvus_collection,
                                        pool_size=settings.retrieval_pool_size)
        app.state.popularity = Popularity(redis, backoff_s=settings.popularity_backoff_s)

        retriever: Retriever = app.state.retriever

        async def catalog_check() -> dict[str, object]:
            current = retriever.catalog
            if not len(current):
                raise RuntimeError("no catalog loaded yet: run `pickwise-pipeline ingest`")
            return {"items": len(current), "groups": len(current.groups), "model": embedder.model_name}

        async def refresh() -> None:
            """Pick up a new ingest (catalog_state changed) without a restart."""
            nonlocal version
            while True:
                await asyncio.sleep(settings.catalog_refresh_s)
                try:
                    latest = await Catalog.version(pool)
                    if latest != version:
                        retriever.catalog = await Catalog.load(pool)
                        if await anyio.to_thread.run_sync(milvus.has_collection, settings.milvus_collection):
                            await anyio.to_thread.run_sync(milvus.load_collection, settings.milvus_collection)
                        version = latest
                        log.info("catalog reloaded: %d items", len(retriever.catalog))
                except Exception:  # noqa: BLE001 - keep serving the catalog we have; try again next round
                    log.exception("catalog refresh failed")

        app.state.readiness.add("catalog", catalog_check, required=False)
        task = asyncio.create_task(refresh())
        try:
            yield
        finally:
            task.cancel()


def create_app(settings: RetrieverSettings | None = None) -> FastAPI:
    settings = settings or RetrieverSettings()
    app = service_app("retriever", settings, lifespan=lifespan,
                      description="Query understanding, BM25 + dense retrieval, fusion, filters, item lookup.")
    app.include_router(api.router)
    return app
