"""Ingest against the real Postgres, Milvus Lite and Redis of the test session, isolated from the shared
stack's catalog (its own database, Milvus collection and Redis db)."""

import asyncio
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
import redis
from pymilvus import MilvusClient

pytestmark = pytest.mark.integration

HEADER = ["Brand", "Model", "Color", "Memory", "Storage", "Rating", "Selling Price", "Original Price"]
ROWS = [
    ["SAMSUNG", "Galaxy M31", "Black", "6 GB RAM", "128 GB ROM", "4.3", "15999", "18999"],
    ["Samsung", "Galaxy M31", "Blue", "6GB RAM", "128 GB ROM", "4.3", "15999", "18999"],
    ["Nokia", "105", "Black", "4 MB", "4 MB", "", "1299", "1299"],
    ["Apple", "iPhone 12", "White", "nan", "1 TB", "54999.0", "54999", "54999"],
    ["OPPO", "A53", "Mint Cream", "4 GB RAM", "64 GB ROM", "4.5", "nan", "15990"],
    ["SAMSUNG", "Galaxy M31", "Black", "6 GB RAM", "128 GB ROM", "4.3", "15999", "18999"],
]


@pytest.fixture(scope="module")
def isolated(infra, fresh_database, tmp_path_factory):
    """Env for ingest pointing at a fresh database, collection and Redis db on the session's infra."""
    name, url = fresh_database("ingest")
    path = tmp_path_factory.mktemp("catalog") / "mini.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    env = dict(os.environ) | infra.config.env() | {
        "PICKWISE_POSTGRES_URL": url,
        "PICKWISE_REDIS_URL": infra.config.redis_url.rsplit("/", 1)[0] + "/7",
        "PICKWISE_MILVUS_COLLECTION": name, "PICKWISE_CATALOG_PATH": str(path), "HF_HUB_OFFLINE": "1"}
    redis.Redis.from_url(env["PICKWISE_REDIS_URL"]).flushdb()
    return env


def ingest(env: dict, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "ingest", *args], env=env,
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def fetch(env: dict, sql: str) -> list:
    async def go() -> list:
        conn = await asyncpg.connect(env["PICKWISE_POSTGRES_URL"])
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_ingest_loads_every_store_and_reports_rejects_and_duplicates(isolated) -> None:
    report = ingest(isolated)
    assert report["status"] == "loaded"
    assert (report["rows_read"], report["items"], report["rows_rejected"], report["duplicates"]) == (6, 5, 1, 1)
    assert report["rejected_by_reason"] == {"missing or non-numeric price": 1}

    rows = {r["item_id"]: r for r in fetch(isolated, "SELECT * FROM items")}
    assert sorted(rows) == ["fm-00001", "fm-00002", "fm-00003", "fm-00004", "fm-00006"]
    assert rows["fm-00001"]["brand"] == rows["fm-00002"]["brand"] == "Samsung"
    assert rows["fm-00001"]["group_id"] == rows["fm-00002"]["group_id"]
    assert rows["fm-00004"]["storage_gb"] == 1024 and rows["fm-00004"]["rating"] is None
    assert rows["fm-00003"]["price_band"] == "budget"

    r = redis.Redis.from_url(isolated["PICKWISE_REDIS_URL"], decode_responses=True)
    meta = r.hgetall("item:fm-00001")
    assert json.loads(meta["json"])["title"].startswith("Samsung Galaxy M31")
    assert (meta["brand"], meta["category"]) == ("Samsung", "mobile")
    assert r.zcard("catalog:by_rating") == 5

    # a dedicated channel: not shared with (and not left to) other tests of this process
    client = MilvusClient(uri=isolated["PICKWISE_MILVUS_URI"], dedicated=True)
    try:
        hits = client.query(isolated["PICKWISE_MILVUS_COLLECTION"], filter='brand == "Samsung" and ram_gb >= 6',
                            output_fields=["item_id"])
        assert sorted(h["item_id"] for h in hits) == ["fm-00001", "fm-00002", "fm-00006"]
    finally:
        client.close()


def test_reingest_is_idempotent_and_if_changed_skips(isolated) -> None:
    ingest(isolated)
    again = ingest(isolated)
    assert again["items"] == 5
    assert fetch(isolated, "SELECT count(*) AS n FROM items")[0]["n"] == 5
    assert ingest(isolated, "--if-changed")["status"] == "unchanged"


def test_if_changed_restores_redis_metadata_that_was_lost(isolated) -> None:
    ingest(isolated, "--if-changed")
    redis.Redis.from_url(isolated["PICKWISE_REDIS_URL"]).flushdb()
    assert ingest(isolated, "--if-changed")["status"] == "redis_restored"
    assert redis.Redis.from_url(isolated["PICKWISE_REDIS_URL"]).exists("item:fm-00003") == 1


def test_changed_file_is_loaded_again(isolated, tmp_path: Path) -> None:
    ingest(isolated, "--if-changed")
    changed = tmp_path / "changed.csv"
    with changed.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(ROWS[:3])
    report = ingest(isolated | {"PICKWISE_CATALOG_PATH": str(changed)}, "--if-changed")
    assert report["status"] == "loaded"
    assert fetch(isolated, "SELECT count(*) AS n FROM items")[0]["n"] == 3
    assert redis.Redis.from_url(isolated["PICKWISE_REDIS_URL"]).zcard("catalog:by_rating") == 3
