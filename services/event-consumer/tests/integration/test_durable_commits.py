"""The event log's commits survive a Postgres crash: the consumer commits Kafka offsets right after them, so
an insert the server acknowledged but had not flushed (the embedded server runs ``synchronous_commit=off``)
would be an acknowledged event lost when Postgres is killed. The chaos suite lost such events at its
Postgres kill before the consumer's connections asked for synchronous commits."""

import asyncpg
import pytest

from pickwise_common import postgres as pg
from pickwise_event_consumer.config import EventConsumerSettings

pytestmark = pytest.mark.integration


async def test_the_consumer_commits_synchronously_although_the_server_default_is_off(infra) -> None:
    plain = await asyncpg.connect(infra.config.postgres_url)
    try:
        assert await plain.fetchval("SHOW synchronous_commit") == "off"  # the embedded server's default
    finally:
        await plain.close()
    pool = await pg.create_pool(EventConsumerSettings(postgres_url=infra.config.postgres_url))
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await pool.close()
