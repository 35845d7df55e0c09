"""Shared fixtures of the pipeline's integration tests."""

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import pytest


@pytest.fixture(scope="session")
def fresh_database(infra) -> Callable[[str], tuple[str, str]]:
    """Creates a database of its own on the session's Postgres: ``(name, url)`` for a name prefix."""

    def create(prefix: str) -> tuple[str, str]:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        base = infra.config.postgres_url

        async def go() -> None:
            conn = await asyncpg.connect(base)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(go())
        return name, base.rsplit("/", 1)[0] + f"/{name}"

    return create
