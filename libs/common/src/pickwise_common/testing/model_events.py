"""Test reads of ``model_events`` (migration 0006): what the rollout controller recorded for a model."""

from __future__ import annotations

import asyncpg


async def rollout_outcomes(postgres_url: str, model: str) -> list[asyncpg.Record]:
    """The ``rolled_back`` and ``promoted`` rows of ``model`` in the order written: version, action, reason, detail."""
    conn = await asyncpg.connect(postgres_url)
    try:
        return await conn.fetch("SELECT version, action, reason, detail FROM model_events WHERE model_name = $1 "
                                "AND action IN ('rolled_back', 'promoted') ORDER BY id", model)
    finally:
        await conn.close()
