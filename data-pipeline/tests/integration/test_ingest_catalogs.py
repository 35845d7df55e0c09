"""Both catalogs through the same ingest into the real Postgres, Milvus Lite and Redis of the test session
(isolated: its own database, collection and Redis db): each catalog's items, vectors, BM25 index and Redis
keys are its own, and re-loading one leaves the other alone."""

import asyncio
import csv
import gzip
import json
import os
import subprocess
import sys

import asyncpg
import pytest
import redis
from pymilvus import MilvusClient

from pickwise_pipeline.retail_catalog import COLUMNS

pytestmark = pytest.mark.integration

PHONES = [["Brand", "Model", "Color", "Memory", "Storage", "Rating", "Selling Price", "Original Price"],
          ["SAMSUNG", "Galaxy M31", "Black", "6 GB RAM", "128 GB ROM", "4.3", "15999", "18999"],
          ["Nokia", "105", "Black", "4 MB", "4 MB", "", "1299", "1299"]]


def _line(invoice: str, code: str, description: str, quantity: int, price: float, customer: str = "17850.0") -> list:
    return [invoice, code, description, quantity, "2010-12-01 08:26:00", price, customer, "United Kingdom"]


LINES = [
    _line("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, 2.55),
    _line("536366", "85123a", "WHITE HANGING HEART T-LIGHT HOLDER", 6, 2.95),
    _line("536367", "85123A", "CREAM HANGING HEART T-LIGHT HOLDER", 6, 2.55),
    _line("536365", "20725", "LUNCH BAG RED RETROSPOT", 10, 1.65),
    _line("536368", "20725", "LUNCH BAG RED RETROSPOT", 10, 1.65),
    _line("536365", "POST", "POSTAGE", 1, 18.0),
    _line("536369", "M", "Manual", 1, 2.0),
    _line("C536370", "20725", "LUNCH BAG RED RETROSPOT", -10, 1.65),
    _line("536371", "21730", "damaged", -5, 0.0, customer=""),
    ["536372", "22086", "too few fields"],
]


@pytest.fixture(scope="module")
def env(infra, fresh_database, tmp_path_factory) -> dict:
    name, url = fresh_database("catalogs")
    folder = tmp_path_factory.mktemp("catalogs")
    phones = folder / "phones.csv"
    with phones.open("w", newline="") as fh:
        csv.writer(fh).writerows(PHONES)
    (folder / "retail").mkdir()
    with gzip.open(folder / "retail" / "online_retail.csv.gz", "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(LINES)
    out = dict(os.environ) | infra.config.env() | {
        "PICKWISE_POSTGRES_URL": url,
        "PICKWISE_REDIS_URL": infra.config.redis_url.rsplit("/", 1)[0] + "/8",
        "PICKWISE_MILVUS_COLLECTION": name, "PICKWISE_CATALOG_PATH": str(phones), "PICKWISE_DATA_DIR": str(folder),
        "HF_HUB_OFFLINE": "1"}
    redis.Redis.from_url(out["PICKWISE_REDIS_URL"]).flushdb()
    return out


def ingest(env: dict, *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "ingest", *args], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def fetch(env: dict, sql: str, *args) -> list:
    async def go() -> list:
        conn = await asyncpg.connect(env["PICKWISE_POSTGRES_URL"])
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def milvus_ids(env: dict, catalog: str) -> list[str]:
    client = MilvusClient(uri=env["PICKWISE_MILVUS_URI"], dedicated=True)
    try:
        rows = client.query(env["PICKWISE_MILVUS_COLLECTION"], filter=f'catalog == "{catalog}"',
                            output_fields=["item_id", "price"])
        return sorted(r["item_id"] for r in rows)
    finally:
        client.close()


def test_both_catalogs_load_into_their_own_namespaces(env: dict) -> None:
    phones = ingest(env, "--catalog", "flipkart")
    retail = ingest(env, "--catalog", "retail")
    assert (phones["status"], phones["items"]) == ("loaded", 2)
    assert (retail["status"], retail["catalog"], retail["items"]) == ("loaded", "retail", 2)
    assert (retail["rows_read"], retail["rows_rejected"], retail["excluded_codes"]) == (10, 1, 2)
    assert retail["codes_without_sale"] == 1 and retail["case_variants_merged"] == 1

    rows = {r["item_id"]: r for r in fetch(env, "SELECT item_id, catalog, title, price, currency, price_inr "
                                                "FROM items")}
    assert sorted(rows) == ["fm-00001", "fm-00002", "or-20725", "or-85123A"]
    heart = rows["or-85123A"]
    assert (heart["catalog"], heart["title"], heart["price"], heart["currency"], heart["price_inr"]) == \
        ("retail", "WHITE HANGING HEART T-LIGHT HOLDER", 2.55, "GBP", None)
    assert (rows["fm-00001"]["catalog"], rows["fm-00001"]["currency"], rows["fm-00001"]["price"]) == \
        ("flipkart", "INR", 15999)
    states = {r["catalog"]: r["item_count"] for r in fetch(env, "SELECT catalog, item_count FROM catalog_state")}
    assert states == {"flipkart": 2, "retail": 2}

    assert milvus_ids(env, "retail") == ["or-20725", "or-85123A"]
    assert milvus_ids(env, "flipkart") == ["fm-00001", "fm-00002"]

    r = redis.Redis.from_url(env["PICKWISE_REDIS_URL"], decode_responses=True)
    assert json.loads(r.hget("retail:item:or-85123A", "json"))["currency"] == "GBP"
    assert not r.exists("item:or-85123A")
    assert sorted(r.zrange("retail:catalog:by_rating", 0, -1)) == ["or-20725", "or-85123A"]
    assert sorted(r.zrange("catalog:by_rating", 0, -1)) == ["fm-00001", "fm-00002"]


def test_if_changed_skips_each_catalog_and_a_reload_leaves_the_other_alone(env: dict) -> None:
    ingest(env, "--catalog", "flipkart", "--if-changed")
    ingest(env, "--catalog", "retail", "--if-changed")
    assert ingest(env, "--catalog", "retail", "--if-changed")["status"] == "unchanged"
    assert ingest(env, "--if-changed")["status"] == "unchanged"
    assert ingest(env, "--catalog", "flipkart")["status"] == "loaded"
    assert milvus_ids(env, "retail") == ["or-20725", "or-85123A"]
    assert fetch(env, "SELECT count(*) AS n FROM items WHERE catalog = 'retail'")[0]["n"] == 2
    assert ingest(env, "--catalog", "retail", "--if-changed")["status"] == "unchanged"


def test_unknown_catalog_is_refused(env: dict) -> None:
    result = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "ingest", "--catalog", "nosuch"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0 and "unknown catalog 'nosuch'" in result.stderr
