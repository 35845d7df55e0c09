"""generator service: wiring only (routes in api.py, domain logic in plain modules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pickwise_common.app import service_app
from pickwise_generator import api
from pickwise_generator.config import GeneratorSettings
from pickwise_generator.generation import TEMPLATE, Generator
from pickwise_generator.providers import build_providers


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: GeneratorSettings = app.state.settings
    providers = build_providers(settings)
    app.state.generator = Generator(providers, total_budget_s=settings.llm_total_budget_ms / 1000)

    async def llm_check() -> dict[str, object]:
        # configuration only: probing a paid API on every readiness poll would cost money and quota
        return {"providers": [p.name for p in providers] + [TEMPLATE],
                "models": {p.name: p.model for p in providers},
                "llm": "configured" if providers else "offline (template answers)"}

    app.state.readiness.add("llm", llm_check, required=False)
    try:
        yield
    finally:
        for provider in providers:
            await provider.aclose()


def create_app(settings: GeneratorSettings | None = None) -> FastAPI:
    settings = settings or GeneratorSettings()
    app = service_app("generator", settings, lifespan=lifespan,
                      description="Grounded answer text: Groq, OpenAI-compatible, offline template.")
    app.include_router(api.router)
    return app
