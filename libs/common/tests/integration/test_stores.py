"""Migrations, Redis and Milvus Lite against the real embedded servers."""

import asyncpg
import pytest
from pydantic import SecretStr

from pickwise_common.postgres import apply_migrations, create_pool, load_migrations, ping
from pickwise_common.redis import create_redis, user_clicks_key
from pickwise_common.settings import PostgresSettings, RedisSettings

pytestmark = pytest.mark.integration


async def test_migrations_are_idempotent(infra) -> None:
    conn = await asyncpg.connect(infra.config.postgres_url)
    try:
        await conn.execute("CREATE DATABASE migrate_twice")
    finally:
        await conn.close()
    url = infra.config.postgres_url.rsplit("/", 1)[0] + "/migrate_twice"
    conn = await asyncpg.connect(url)
    try:
        first = await apply_migrations(conn)
        second = await apply_migrations(conn)
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert first == [m.version for m in load_migrations()]
    assert second == []
    assert {"events", "sessions", "session_turns", "items", "schema_migrations"} <= tables
    assert recorded == len(first)


async def test_events_table_keeps_one_row_per_event_id(infra) -> None:
    pool = await create_pool(PostgresSettings(postgres_url=SecretStr(infra.config.postgres_url)), migrate=True)
    try:
        assert (await ping(pool))["pool_size"] >= 1
        insert = ("INSERT INTO events (event_id, type, user_id, item_id, ts) VALUES "
                  "('6f1c1c6e-0000-4000-8000-000000000001', 'click', 'u', 'fm-00001', now()) "
                  "ON CONFLICT (event_id) DO NOTHING")
        await pool.execute(insert)
        await pool.execute(insert)
        count = await pool.fetchval("SELECT count(*) FROM events WHERE user_id = 'u'")
    finally:
        await pool.close()
    assert count == 1


async def test_redis_helper_talks_to_the_real_server(infra) -> None:
    client = create_redis(RedisSettings(redis_url=infra.config.redis_url))
    try:
        key = user_clicks_key("u-1")
        await client.lpush(key, "fm-00001")
        assert await client.lrange(key, 0, -1) == ["fm-00001"]
        assert key == "u:{u-1}:clicks"
    finally:
        await client.aclose()


def test_milvus_lite_server_filters_and_searches(infra) -> None:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=infra.config.milvus_uri, dedicated=True)  # not a channel another test left idle
    name = "smoke_items"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=32)
    schema.add_field("price", DataType.FLOAT)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    index = client.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)
    client.insert(name, [{"id": "a", "price": 100.0, "vec": [1, 0, 0, 0]},
                         {"id": "b", "price": 900.0, "vec": [0.9, 0.1, 0, 0]},
                         {"id": "c", "price": 200.0, "vec": [0, 1, 0, 0]}])
    client.flush(name)
    client.load_collection(name)
    hits = client.search(name, [[1, 0, 0, 0]], limit=2, filter="price < 500", output_fields=["price"])[0]
    client.close()
    assert [h["id"] for h in hits] == ["a", "c"]
