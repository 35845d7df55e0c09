"""Never an empty page: when the constraints leave fewer than k results the retriever relaxes them in the stated
order (decision 0732), strict matches first and the relaxed fields named in ``parsed.relaxed``."""

import pytest

from pickwise_common.schemas import RetrieveRequest
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.retrieval import Retriever

from .test_retrieval import ITEMS, VectorStore, no_popularity

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    from pickwise_common.embeddings import Embedder

    embedder = Embedder()
    return Retriever(Catalog.from_items(ITEMS), embedder, VectorStore(embedder), "items")


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
async def test_over_constrained_query_fills_k_with_strict_matches_first(retriever: Retriever, mode: str) -> None:
    response = await retriever.retrieve(RetrieveRequest(query="infinix under 11k", mode=mode, k=5), no_popularity)
    assert len(response.candidates) == 5
    assert response.parsed.relaxed == ["price_max_inr"]
    assert response.parsed.price_max_inr == 11000  # what the shopper asked for, not the relaxed bound
    strict = [all(c.satisfies.values()) for c in response.candidates]
    assert strict == [True, True, True, True, False]
    assert response.candidates[-1].item.model == "Note 11"  # 12,499: the nearest price above the cap


async def test_enough_strict_matches_relax_nothing(retriever: Retriever) -> None:
    response = await retriever.retrieve(RetrieveRequest(query="infinix under 11k", k=2), no_popularity)
    assert response.parsed.relaxed == []
    assert all(all(c.satisfies.values()) for c in response.candidates)


async def test_brand_is_never_relaxed(retriever: Retriever) -> None:
    response = await retriever.retrieve(RetrieveRequest(query="samsung phone", k=5), no_popularity)
    assert [c.item.brand for c in response.candidates] == ["Samsung"]


async def test_ram_relaxes_one_tier_after_price(retriever: Retriever) -> None:
    response = await retriever.retrieve(RetrieveRequest(query="infinix 8gb ram", k=3), no_popularity)
    assert response.parsed.relaxed == ["ram_gb_min"]
    assert {c.item.ram_gb for c in response.candidates} == {6}
