"""The retrieval pipeline over a small in-memory catalog, with a stand-in for the vector store (the real
Milvus is exercised by the integration tests): ordering, grouping, modes, and no blocking on the loop."""

from types import SimpleNamespace

import numpy as np
import pytest
from blockbuster import blockbuster_ctx

from pickwise_common.embeddings import Embedder
from pickwise_common.errors import DependencyUnavailable
from pickwise_common.schemas import Item, RetrieveRequest
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.deps import get_retriever
from pickwise_retriever.retrieval import Retriever

pytestmark = pytest.mark.unit


def _item(n: int, model: str, price: float, ram: float, color: str, rating: float = 4.3,
          brand: str = "Infinix") -> Item:
    return Item(item_id=f"t-{n:02d}", title=f"{brand} {model}", brand=brand, model=model, color=color, ram_gb=ram,
                storage_gb=64, price_inr=price, rating=rating, price_band="budget",
                group_id=f"g-{model}-{ram}".lower().replace(" ", "-"), attrs={"feature_phone": False})


ITEMS = [
    _item(1, "Hot 10 Play", 8299, 3, "Purple"), _item(2, "Hot 10", 10999, 4, "Black", 4.6),
    _item(3, "Hot 10", 10999, 4, "Blue", 4.6), _item(4, "Note 11", 12499, 4, "Black"),
    _item(5, "Hot 10S", 9999, 6, "Black"), _item(6, "Note 10", 10999, 6, "Green", 4.1),
    _item(7, "Galaxy M31", 15999, 6, "Black", 4.4, brand="Samsung"),
]


class VectorStore:
    """Answers like MilvusClient.search: the items passing a (brand-only) filter, by cosine similarity."""

    def __init__(self, embedder: Embedder) -> None:
        self.vectors = embedder.encode_documents([f"{i.brand} {i.model} {i.color}" for i in ITEMS])

    def search(self, collection, data, filter, limit, **_kwargs):  # noqa: A002 - MilvusClient's name
        scores = self.vectors @ np.asarray(data[0])
        order = [n for n in np.argsort(-scores) if "Samsung" not in filter or ITEMS[n].brand == "Samsung"]
        return [[{"entity": {"item_id": ITEMS[n].item_id}, "distance": float(scores[n])} for n in order[:limit]]]


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    embedder = Embedder()
    return Retriever(Catalog.from_items(ITEMS), embedder, VectorStore(embedder), "items")


async def no_popularity(_ids):
    return {}


async def test_exact_model_first_and_colours_grouped(retriever: Retriever) -> None:
    with blockbuster_ctx():
        response = await retriever.retrieve(RetrieveRequest(query="infinix hot 10", k=5), no_popularity)
    first = response.candidates[0]
    assert first.item.model == "Hot 10"
    assert sorted([first.item.item_id, *first.variant_ids]) == ["t-02", "t-03"]
    models = [c.item.model for c in response.candidates]
    assert models.count("Hot 10") == 1
    assert "Galaxy M31" not in models


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
async def test_every_mode_answers_within_the_filter(retriever: Retriever, mode: str) -> None:
    # k = the four Infinix models under 11k, so nothing needs relaxing (see test_relaxation.py)
    response = await retriever.retrieve(RetrieveRequest(query="infinix under 11k", mode=mode, k=4), no_popularity)
    assert len(response.candidates) == 4 and response.parsed.relaxed == []
    assert all(c.item.brand == "Infinix" and c.item.price_inr <= 11000 for c in response.candidates)
    assert all(c.satisfies == {"brands": True, "price_max_inr": True} for c in response.candidates)


async def test_cheapest_orders_the_whole_filtered_set_by_price(retriever: Retriever) -> None:
    response = await retriever.retrieve(RetrieveRequest(query="cheapest infinix phones"), no_popularity)
    prices = [c.item.price_inr for c in response.candidates]
    assert prices == sorted(prices) and prices[0] == 8299


async def test_named_ram_comes_first(retriever: Retriever) -> None:
    response = await retriever.retrieve(RetrieveRequest(query="infinix 6gb ram"), no_popularity)
    assert {c.item.ram_gb for c in response.candidates[:2]} == {6}


async def test_group_variants_off_returns_each_colour(retriever: Retriever) -> None:
    response = await retriever.retrieve(RetrieveRequest(query="hot 10", group_variants=False), no_popularity)
    ids = [c.item.item_id for c in response.candidates]
    assert {"t-02", "t-03"} <= set(ids)
    assert all(not c.variant_ids for c in response.candidates)


async def test_impossible_constraints_answer_nothing(retriever: Retriever) -> None:
    response = await retriever.retrieve(RetrieveRequest(query="above 50k under 20k"), no_popularity)
    assert response.candidates == []
    assert response.parsed.impossible


def test_requests_before_any_ingest_are_503_not_500() -> None:
    empty = Retriever(Catalog.from_items([]), Embedder(), None, "items")
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(retriever=empty)))
    with pytest.raises(DependencyUnavailable, match="not loaded") as caught:
        get_retriever(request)
    assert caught.value.status_code == 503
