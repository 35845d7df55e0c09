"""The in-process dense search (decision 0907) against Milvus Lite on the ingested catalog: for seeded random
constraint combinations and query vectors, the same items with the same inner products as Milvus's exact
(FLAT) search with the equivalent filter expression."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pydantic import SecretStr

from pickwise_common.postgres import create_pool
from pickwise_common.schemas import Constraints
from pickwise_common.settings import PostgresSettings
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.retrieval import Retriever

pytestmark = pytest.mark.integration

COLLECTION = "items"  # the retriever's and ingest's default collection


def random_constraints(rng: random.Random, brands: list[str]) -> Constraints:
    c: dict = {}
    if rng.random() < 0.4:
        c["brands"] = rng.sample(brands, rng.randint(1, 3))
    if rng.random() < 0.4:
        c["price_max_inr"] = rng.choice([9_999, 15_000, 20_000, 35_000])
    if rng.random() < 0.3:
        c["ram_gb_min"] = rng.choice([3, 4, 6, 8])
    if rng.random() < 0.2:
        c["rating_min"] = rng.choice([4.0, 4.3])
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


async def test_in_process_search_returns_what_milvus_returns(catalog: Catalog, milvus) -> None:
    in_process = Retriever(catalog, None, milvus, COLLECTION, dense_in_process_max_items=len(catalog))  # type: ignore[arg-type]
    in_milvus = Retriever(catalog, None, milvus, COLLECTION, dense_in_process_max_items=0)  # type: ignore[arg-type]
    copy = await in_process.catalog_vectors(catalog)
    assert copy is not None and copy.present.all()
    brands = sorted({i.brand for i in catalog.items})
    rng = random.Random(907)
    compared = 0
    for _ in range(30):
        c = random_constraints(rng, brands)
        mask = catalog.mask(c)
        if not mask.any():
            continue
        query = copy.matrix[rng.randrange(len(catalog))]
        ours = (await in_process._dense(catalog, query, mask, c, 100)).pairs()
        theirs = (await in_milvus._dense(catalog, query, mask, c, 100)).pairs()
        # the same top 100 up to ties (identical listings have identical vectors), scores equal in float32
        assert np.allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5), c
        cutoff = ours[-1][1]
        assert {i for i, s in ours if s > cutoff + 1e-5} == {i for i, s in theirs if s > cutoff + 1e-5}, c
        compared += 1
    assert compared >= 20
