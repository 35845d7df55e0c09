"""The session app in-process (lifespan running) against the session's real Redis and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pickwise_session.app import create_app
from pickwise_session.config import SessionSettings


@pytest.fixture
async def session_api(infra: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    cfg = infra.config
    app = create_app(SessionSettings(redis_url=cfg.redis_url, postgres_url=cfg.postgres_url, log_json=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://session") as client:
            yield client, app
