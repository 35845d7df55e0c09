"""reranker service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pickwise_common import resources
from pickwise_common.app import service_app
from pickwise_reranker import api
from pickwise_reranker.behaviour_boost import BoostWeights
from pickwise_reranker.config import RerankerSettings
from pickwise_reranker.models import model_status, poll_rankers, ranker_slots, reload_models
from pickwise_reranker.ranking import Reranker


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: RerankerSettings = app.state.settings
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(resources.redis_client(app, settings, required=False))
        reranker = Reranker(
            weights=BoostWeights(click=settings.boost_click_weight, affinity=settings.boost_affinity_weight,
                                 popularity=settings.boost_popularity_weight, cap=settings.boost_cap,
                                 half_life_h=settings.affinity_half_life_h),
            ce_weight=settings.reranker_cross_encoder_weight, rankers=ranker_slots(settings), redis=client)
        await reload_models(reranker, settings)
        app.state.reranker = reranker
        if reranker.rankers.registry is not None:  # follow the aliases (decision 1003b)
            poll = asyncio.create_task(poll_rankers(reranker, settings.registry_poll_s))
            stack.callback(poll.cancel)

        async def models_check() -> dict[str, object]:
            return model_status(reranker, settings)

        app.state.readiness.add("models", models_check, required=False)
        yield


def create_app(settings: RerankerSettings | None = None) -> FastAPI:
    settings = settings or RerankerSettings()
    app = service_app("reranker", settings, lifespan=lifespan,
                      description="Cross-encoder, learned ranker and real-time behaviour boost.")
    app.include_router(api.router)
    app.openapi = documented_openapi(app)  # type: ignore[method-assign]
    return app


def documented_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` with the operations of ``api.docs_router`` (routes that read their body themselves are
    documented as FastAPI documents a model-typed body)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version, summary=app.summary,
                description=app.description, terms_of_service=app.terms_of_service, contact=app.contact,
                license_info=app.license_info, routes=[*app.routes, *api.docs_router.routes],
                webhooks=app.webhooks.routes, tags=app.openapi_tags, servers=app.servers,
                separate_input_output_schemas=app.separate_input_output_schemas,
                external_docs=app.openapi_external_docs)
        return app.openapi_schema
    return openapi
