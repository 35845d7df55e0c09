"""In-process exact dense search over a catalog's vectors: the same top-k as an exact search within the filter."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pickwise_retriever import vectors
from pickwise_retriever.vectors import CatalogVectors

pytestmark = pytest.mark.unit


def unit_rows(n: int, dim: int = 16, seed: int = 3) -> np.ndarray:
    matrix = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def brute_force(matrix: np.ndarray, ids: list[str], query: np.ndarray, allowed: np.ndarray, k: int) -> list[str]:
    scores = [(float(matrix[n] @ query), ids[n]) for n in np.flatnonzero(allowed)]
    return [item_id for _, item_id in sorted(scores, reverse=True)[:k]]


@pytest.mark.parametrize("share", [1.0, 0.5, 0.05])
def test_top_k_within_the_mask_matches_an_exact_search(share: float) -> None:
    matrix = unit_rows(500)
    ids = [f"i{n}" for n in range(500)]
    index = CatalogVectors(ids, matrix, np.ones(500, dtype=bool))
    rng = np.random.default_rng(7)
    for _ in range(20):
        mask = rng.random(500) < share
        query = unit_rows(1, seed=int(rng.integers(1000)))[0]
        hits = index.search(query, mask, 40)
        assert [i for i, _ in hits] == brute_force(matrix, ids, query, mask, 40)
        assert all(mask[int(i[1:])] for i, _ in hits)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_items_without_a_vector_are_never_hits() -> None:
    present = np.array([True, False, True, True])
    index = CatalogVectors(["a", "b", "c", "d"], unit_rows(4), present)
    hits = index.search(unit_rows(4)[1], np.ones(4, dtype=bool), 10)
    assert {i for i, _ in hits} == {"a", "c", "d"}


def test_an_empty_filter_finds_nothing() -> None:
    index = CatalogVectors(["a", "b"], unit_rows(2), np.ones(2, dtype=bool))
    assert index.search(unit_rows(2)[0], np.zeros(2, dtype=bool), 10) == []


class PagedCollection:
    """Stands in for pymilvus's query_iterator over one collection (pure paging logic only)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.filters: list[str] = []

    def query_iterator(self, collection: str, batch_size: int, filter: str, output_fields: list[str]) -> Any:
        self.filters.append(filter)
        catalog = filter.split('"')[1]
        pages = [self.rows[i:i + 2] for i in range(0, len(self.rows), 2)]
        pages = [[r for r in page if r["catalog"] == catalog] for page in pages]

        class Iterator:
            def next(self) -> list[dict[str, Any]]:
                return pages.pop(0) if pages else []

            def close(self) -> None:
                pass

        return Iterator()


def test_load_aligns_rows_with_the_catalog_order_and_marks_missing_items() -> None:
    matrix = unit_rows(3)
    rows = [{"item_id": "c", "vector": matrix[2].tolist(), "catalog": "shop"},
            {"item_id": "x", "vector": matrix[0].tolist(), "catalog": "other"},
            {"item_id": "a", "vector": matrix[0].tolist(), "catalog": "shop"},
            {"item_id": "gone", "vector": matrix[1].tolist(), "catalog": "shop"}]
    client = PagedCollection(rows)
    copied = vectors.load(client, "items", "shop", ["a", "b", "c"])
    assert client.filters == ['catalog == "shop"']
    assert copied.present.tolist() == [True, False, True]
    assert np.allclose(copied.matrix[0], matrix[0]) and np.allclose(copied.matrix[2], matrix[2])
    assert not copied.matrix[1].any()


def _catalog() -> Any:
    from pickwise_common.schemas import Item
    from pickwise_retriever.catalog import Catalog

    return Catalog.from_items([Item(item_id=f"t-{n}", title=f"Phone {n}", brand="Nokia", model=f"{n}", price_inr=999.0,
                                    group_id=f"g-{n}") for n in range(4)])


class Store(PagedCollection):
    def __init__(self, matrix: np.ndarray) -> None:
        super().__init__([{"item_id": f"t-{n}", "vector": matrix[n].tolist(), "catalog": "flipkart"}
                          for n in range(len(matrix))])
        self.searches = 0

    def search(self, *_args: Any, **_kwargs: Any) -> list[list[dict[str, Any]]]:
        self.searches += 1
        return [[{"entity": {"item_id": "t-0"}, "distance": 1.0}]]


async def test_a_reloaded_catalog_copies_the_vectors_again_so_search_follows_the_new_ingest() -> None:
    from pickwise_retriever.retrieval import Retriever

    old, new = unit_rows(4, seed=1), unit_rows(4, seed=2)
    store = Store(old)
    retriever = Retriever(_catalog(), None, store, "items", dense_in_process_max_items=10)  # type: ignore[arg-type]
    everything = np.ones(4, dtype=bool)
    first = (await retriever._dense(retriever.catalog, old[2], everything, None, 1)).pairs()  # type: ignore[arg-type]
    assert first[0][0] == 2 and len(store.filters) == 1
    await retriever._dense(retriever.catalog, old[2], everything, None, 1)  # type: ignore[arg-type]
    assert len(store.filters) == 1  # same catalog object: the copy is reused
    store.rows = Store(new).rows  # a new ingest wrote other vectors; the refresh loads the catalog again
    retriever.catalog = _catalog()
    again = (await retriever._dense(retriever.catalog, new[3], everything, None, 1)).pairs()  # type: ignore[arg-type]
    assert again[0][0] == 3 and len(store.filters) == 2
    assert store.searches == 0


async def test_a_catalog_above_the_limit_searches_in_milvus() -> None:
    from pickwise_common.schemas import Constraints
    from pickwise_retriever.retrieval import Retriever

    store = Store(unit_rows(4))
    retriever = Retriever(_catalog(), None, store, "items", dense_in_process_max_items=3)  # type: ignore[arg-type]
    everything = np.ones(4, dtype=bool)
    hits = (await retriever._dense(retriever.catalog, unit_rows(1)[0], everything, Constraints(), 5)).pairs()
    assert hits == [(0, 1.0)] and store.searches == 1 and store.filters == []
