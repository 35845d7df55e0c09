"""asyncpg pool and versioned, idempotent schema migrations (``migrations/NNNN_name.sql``)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg

from pickwise_common.settings import PostgresSettings

log = logging.getLogger("pickwise.postgres")

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; every service that migrates at start-up takes the same advisory lock.
_MIGRATION_LOCK_ID = 7_466_271_001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("pickwise_common.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {sorted(versions)}")
    return sorted(found, key=lambda m: m.version)


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply the migrations not yet recorded, each in its own transaction, under an advisory lock so
    concurrent services do not race. Returns the versions applied now (empty on a second run)."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())""")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                   migration.version, migration.name)
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)


def pool_options(settings: PostgresSettings) -> dict[str, Any]:
    """Keyword arguments of ``asyncpg.create_pool``: both timeouts come from settings, so a Postgres outage
    costs a caller ``postgres_connect_timeout_ms`` per (re)connect, not asyncpg's default 60 s."""
    options: dict[str, Any] = {"min_size": settings.postgres_pool_min, "max_size": settings.postgres_pool_max,
                               "command_timeout": settings.postgres_timeout_ms / 1000,
                               "timeout": settings.postgres_connect_timeout_ms / 1000}
    if settings.postgres_synchronous_commit is not None:
        options["server_settings"] = {"synchronous_commit": settings.postgres_synchronous_commit}
    return options


async def create_pool(settings: PostgresSettings, *, migrate: bool = False, **kwargs: Any) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(settings.postgres_url.get_secret_value(), **(pool_options(settings) | kwargs))
    if migrate:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
    return pool


async def ping(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
    return {"pool_size": pool.get_size(), "pool_idle": pool.get_idle_size()}
