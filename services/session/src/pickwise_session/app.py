"""session service: wiring only (routes in api.py, reads in memory.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app
from pickwise_session import api
from pickwise_session.config import SessionSettings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: SessionSettings = app.state.settings
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(resources.postgres_pool(app, settings))
        await stack.enter_async_context(resources.redis_client(app, settings, required=False))
        yield


def create_app(settings: SessionSettings | None = None) -> FastAPI:
    settings = settings or SessionSettings()
    app = service_app("session", settings, lifespan=lifespan,
                      description="Session memory and user features (read side).")
    app.include_router(api.router)
    return app
