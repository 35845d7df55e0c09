"""Exact dense search in process over one catalog's vectors, read from Milvus (decision 0907).

Milvus stays the store: ingest writes the vectors there, and this module copies them out when the retriever
(re)loads a catalog, row-aligned with ``Catalog.items``. A search is then one float32 matrix-vector product
over the filtered rows: the same inner products, and so the same top-k, as Milvus's FLAT (exact) search with
the equivalent filter expression, without the Milvus Lite round trip (≈25-45 ms of server CPU per search at
4k items, docs/benchmarks.md). Catalogs above ``dense_in_process_max_items`` keep searching in Milvus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pickwise_retriever.dense import _call

PAGE = 4000  # rows per query_iterator page when copying vectors out of Milvus


@dataclass(frozen=True)
class CatalogVectors:
    """``matrix[n]`` is the unit vector of ``Catalog.items[n]``; ``present[n]`` is False for an item Milvus
    has no vector for (it can never be a dense hit, as in Milvus)."""

    item_ids: list[str]
    matrix: np.ndarray
    present: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)

    def search(self, vector: np.ndarray, mask: np.ndarray, limit: int) -> list[tuple[str, float]]:
        """The top ``limit`` (item_id, inner product) among rows where ``mask`` holds, best first."""
        rows, scores = self.search_rows(vector, mask, limit)
        return [(self.item_ids[n], score) for n, score in zip(rows.tolist(), scores.tolist(), strict=True)]

    def search_rows(self, vector: np.ndarray, mask: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The same top ``limit`` as row numbers and their inner products (float64), best first."""
        allowed = np.flatnonzero(mask & self.present)
        if allowed.size == 0 or limit <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        query = np.asarray(vector, dtype=np.float32)
        # one product over the whole matrix is cheaper than gathering the allowed rows first (4k x 384: ~0.3 ms)
        scores = (self.matrix @ query)[allowed] if allowed.size * 4 > len(self) else self.matrix[allowed] @ query
        if allowed.size > limit:
            top = np.argpartition(-scores, limit - 1)[:limit]
            allowed, scores = allowed[top], scores[top]
        order = np.argsort(-scores, kind="stable")
        return allowed[order].astype(np.int64), scores[order].astype(np.float64)


def load(client: Any, collection: str, catalog: str, item_ids: list[str], dim: int | None = None) -> CatalogVectors:
    """Copy ``catalog``'s vectors out of Milvus into a matrix row-aligned with ``item_ids``. Synchronous."""
    index_of = {item_id: n for n, item_id in enumerate(item_ids)}
    rows: list[tuple[int, list[float]]] = []

    def read() -> None:
        iterator = client.query_iterator(collection, batch_size=PAGE, filter=f'catalog == "{catalog}"',
                                         output_fields=["item_id", "vector"])
        try:
            while page := iterator.next():
                rows.extend((index_of[r["item_id"]], r["vector"]) for r in page if r["item_id"] in index_of)
        finally:
            iterator.close()

    _call(read, "vector copy")
    width = len(rows[0][1]) if rows else (dim or 0)
    matrix = np.zeros((len(item_ids), width), dtype=np.float32)
    present = np.zeros(len(item_ids), dtype=bool)
    for n, vector in rows:
        matrix[n] = vector
        present[n] = True
    return CatalogVectors(list(item_ids), matrix, present)
