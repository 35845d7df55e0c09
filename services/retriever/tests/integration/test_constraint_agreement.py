"""The one constraint model against the real catalog and the real Milvus collection the stack ingested: for
200 seeded random constraint combinations, the retriever's mask, the per-item verdict, the gateway's fallback
filter, the ranking features and the Milvus expression (executed by Milvus Lite) keep the same items."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pydantic import SecretStr

from pickwise_common.constraints import feature_verdicts, matches, milvus_filter, satisfies
from pickwise_common.postgres import create_pool
from pickwise_common.schemas import Constraints
from pickwise_common.settings import PostgresSettings
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.retrieval import catalog_expr

pytestmark = pytest.mark.integration

COLLECTION = "items"  # the retriever's and ingest's default collection


def random_constraints(rng: random.Random, brands: list[str], colours: list[str]) -> Constraints:
    def maybe(p: float = 0.35) -> bool:
        return rng.random() < p

    c: dict = {}
    if maybe():
        c["brands"] = [rng.choice([b, b.lower(), b.upper()]) for b in rng.sample(brands, rng.randint(1, 2))]
    if maybe(0.15):
        c["brands_exclude"] = [rng.choice(brands)]
    if maybe():
        c["price_max_inr"] = rng.choice([5_000, 9_999, 15_000, 20_000, 35_000, 60_000])
    if maybe(0.2):
        c["price_min_inr"] = rng.choice([1_000, 8_000, 12_000, 25_000])
    if maybe():
        c["ram_gb_min"] = rng.choice([2, 3, 4, 6, 8])
    if maybe(0.15):
        c["ram_gb_max"] = rng.choice([4, 8, 12])
    if maybe():
        c["storage_gb_min"] = rng.choice([32, 64, 128])
    if maybe(0.15):
        c["storage_gb_max"] = rng.choice([64, 128, 256])
    if maybe():
        c["rating_min"] = rng.choice([3.5, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5])
    if maybe(0.2):
        c["discount_pct_min"] = rng.choice([5, 10, 12.5, 25])
    if maybe(0.2):
        c["price_bands"] = rng.sample(["budget", "mid", "premium", "flagship"], rng.randint(1, 2))
    if maybe(0.2):
        c["feature_phone"] = rng.choice([True, False])
    if maybe(0.4):
        c["colors"] = rng.sample(colours, rng.randint(1, 2))
    return Constraints(**c)


@pytest.fixture
async def catalog(stack, infra) -> Catalog:
    pool = await create_pool(PostgresSettings(postgres_url=SecretStr(infra.config.postgres_url)))
    try:
        return await Catalog.load(pool)
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def milvus(stack, infra):
    from pymilvus import MilvusClient

    client = MilvusClient(uri=infra.config.milvus_uri, dedicated=True)
    client.load_collection(COLLECTION)
    yield client
    client.close()


def milvus_ids(client, expr: str) -> set[str]:
    rows = client.query(COLLECTION, filter=expr, output_fields=["item_id"], limit=16384)
    return {str(r["item_id"]) for r in rows}


async def test_every_form_of_the_constraints_keeps_the_same_items(catalog: Catalog, milvus) -> None:
    items = catalog.items
    ids = np.array([i.item_id for i in items])
    brands = sorted({i.brand for i in items})
    colours = ["blue", "black", "ocean blue", "midnight black", "rose gold", "grey", "space grey", "aurora blue",
               "green", "mint green", "red", "gold", "white", "silver"]
    rng = random.Random(20260731)
    partial = 0
    for _ in range(200):
        c = random_constraints(rng, brands, colours)
        by_mask = catalog.mask(c)
        by_verdict = np.array([all(satisfies(i, c).values()) for i in items])
        by_fallback = np.array([matches(i, c) for i in items])
        by_ranking = np.array([all(v for v in feature_verdicts(i, c).values() if v is not None) for i in items])
        assert (by_mask == by_verdict).all(), c
        assert (by_mask == by_fallback).all(), c
        assert (by_mask == by_ranking).all(), c
        # the collection holds every catalog's rows: the retriever searches only its catalog's (decision 0801)
        assert milvus_ids(milvus, catalog_expr(catalog.name, milvus_filter(c, catalog.columns))) == set(ids[by_mask]), c
        partial += bool(by_mask.any()) and not by_mask.all()
    assert partial >= 100  # most combinations keep some items and drop others: the agreement is not vacuous
