"""Dependencies of the session service's routes, declared once as ``Annotated`` aliases (tests can override
them)."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request

from pickwise_session.config import SessionSettings


def get_settings(request: Request) -> SessionSettings:
    return request.app.state.settings


def get_postgres(request: Request) -> asyncpg.Pool:
    return request.app.state.postgres


def get_redis(request: Request) -> Any | None:
    """The Redis client, or None when the service started without one (reads fall back to Postgres)."""
    return getattr(request.app.state, "redis", None)


SettingsDep = Annotated[SessionSettings, Depends(get_settings)]
PostgresDep = Annotated[asyncpg.Pool, Depends(get_postgres)]
RedisDep = Annotated[Any | None, Depends(get_redis)]
