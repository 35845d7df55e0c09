"""reranker service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app
from pickwise_reranker import api
from pickwise_reranker.behaviour_boost import BoostWeights
from pickwise_reranker.config import RerankerSettings
from pickwise_reranker.models import model_status, reload_models
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
            ce_weight=settings.reranker_cross_encoder_weight, redis=client)
        await reload_models(reranker, settings)
        app.state.reranker = reranker

        async def models_check() -> dict[str, object]:
            return model_status(reranker, settings)

        app.state.readiness.add("models", models_check, required=False)
        yield


def create_app(settings: RerankerSettings | None = None) -> FastAPI:
    settings = settings or RerankerSettings()
    app = service_app("reranker", settings, lifespan=lifespan,
                      description="Cross-encoder, learned ranker and real-time behaviour boost.")
    app.include_router(api.router)
    return app
