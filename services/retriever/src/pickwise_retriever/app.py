"""retriever service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import threadpoolctl
from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app
from pickwise_common.catalogs import CATALOGS
from pickwise_common.embeddings import embedder_from_settings
from pickwise_common.errors import DependencyUnavailable
from pickwise_common.registry import Registry
from pickwise_retriever import api, cf_api, cf_serving
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
        # one in-memory Catalog per catalog an ingest recorded in catalog_state (decision 0801)
        versions = await Catalog.versions(pool)
        catalogs = {name: await Catalog.load(pool, name) for name in sorted(versions)}
        # onnx (an export built once under <models_dir>/onnx/) or torch; one intra-op thread per query
        embedder = embedder_from_settings(settings, threads=settings.embedding_threads)
        # the dense search's matrix-vector product: more BLAS threads than requests in flight only wait for
        # busy cores (4k items: p99 8.3 ms with 2 threads on the shared box, 0.45 ms with 1; docs/benchmarks.md)
        threadpoolctl.threadpool_limits(settings.embedding_threads, user_api="blas")
        await anyio.to_thread.run_sync(embedder.encode_query, "phone")  # load the model before serving
        # the parser's word lists (the typo guard reads an English frequency list) load now, not on a query
        await anyio.to_thread.run_sync(parse_query, "samsung phone under 15k")
        if catalogs and await anyio.to_thread.run_sync(milvus.has_collection, settings.milvus_collection):
            await anyio.to_thread.run_sync(milvus.load_collection, settings.milvus_collection)
        app.state.retriever = Retriever(catalogs, embedder, milvus, settings.milvus_collection,
                                        pool_size=settings.retrieval_pool_size,
                                        dense_in_process_max_items=settings.dense_in_process_max_items)
        for loaded in catalogs.values():  # copy the vectors now, not on the first query (decision 0907)
            try:
                await app.state.retriever.catalog_vectors(loaded)
            except DependencyUnavailable:  # serve; the first dense search copies them (or fails as Milvus does)
                log.exception("copying the vectors of catalog %s out of Milvus failed", loaded.name)
        app.state.popularity = Popularity(redis, backoff_s=settings.popularity_backoff_s)

        retriever: Retriever = app.state.retriever

        async def catalog_check() -> dict[str, object]:
            current = retriever.catalog
            if not len(current):
                raise RuntimeError("no catalog loaded yet: run `pickwise-pipeline ingest`")
            return {"items": len(current), "groups": len(current.groups), "model": embedder.describe(),
                    "catalogs": {name: len(c) for name, c in sorted(retriever.catalogs.items())}}

        async def refresh() -> None:
            """Pick up a new ingest of any catalog (its catalog_state row changed) without a restart."""
            nonlocal versions
            while True:
                await asyncio.sleep(settings.catalog_refresh_s)
                try:
                    latest = await Catalog.versions(pool)
                    changed = sorted(name for name, v in latest.items() if versions.get(name) != v)
                    for name in changed:
                        retriever.catalogs[name] = await Catalog.load(pool, name)
                        await retriever.catalog_vectors(retriever.catalogs[name])
                        log.info("catalog %s reloaded: %d items", name, len(retriever.catalogs[name]))
                    for name in set(retriever.catalogs) - set(latest):
                        del retriever.catalogs[name]
                    if changed and await anyio.to_thread.run_sync(milvus.has_collection, settings.milvus_collection):
                        await anyio.to_thread.run_sync(milvus.load_collection, settings.milvus_collection)
                    versions = latest
                except Exception:  # noqa: BLE001 - keep serving the catalog we have; try again next round
                    log.exception("catalog refresh failed")

        app.state.readiness.add("catalog", catalog_check, required=False)
        # CF models: optional (a catalog without one serves its content feed); a newer version is picked up
        cf_models = app.state.cf_models = cf_serving.CfModels(
            settings.cf_models_dir or settings.models_dir, CATALOGS,
            registry=Registry(settings) if settings.registry_enabled else None)
        await cf_serving.refresh_now(cf_models)

        async def cf_check() -> dict[str, object]:
            # like the reranker's absent models: a catalog without a CF model is served (its content feed),
            # so "none" is information, not a failure (`pickwise-pipeline train-cf --catalog NAME` makes one)
            return cf_models.status()

        app.state.readiness.add("cf_models", cf_check, required=False)
        task = asyncio.create_task(refresh())
        cf_task = asyncio.create_task(cf_serving.poll(cf_models, settings.cf_poll_s))
        try:
            yield
        finally:
            task.cancel()
            cf_task.cancel()


def create_app(settings: RetrieverSettings | None = None) -> FastAPI:
    settings = settings or RetrieverSettings()
    app = service_app("retriever", settings, lifespan=lifespan,
                      description="Query understanding, BM25 + dense retrieval, fusion, filters, item lookup.")
    app.include_router(api.router)
    app.include_router(cf_api.router)
    return app
