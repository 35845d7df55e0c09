"""Dense retrieval in Milvus: the constraints become a Milvus filter expression (``constraints.milvus_filter``
over the scalar fields ingest declares), so filtering happens inside the vector search."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pymilvus.exceptions import MilvusException

from pickwise_common.errors import DependencyUnavailable

_RETRYABLE = {1, 2}  # Milvus client codes: unexpected error, connect failed (channel unavailable)


def search(client: Any, collection: str, vector: list[float], expr: str, limit: int,
           search_params: dict[str, Any] | None = None) -> list[tuple[str, float]]:
    """Top ``limit`` (item_id, inner product) within the filter. Synchronous: call it from a thread."""
    hits = _call(lambda: client.search(
        collection, data=[vector], filter=expr, limit=min(limit, 16384), output_fields=["item_id"],
        search_params=search_params or {"metric_type": "IP"}, anns_field="vector"), "vector search")
    return [(str(h["entity"]["item_id"]), float(h["distance"])) for h in hits[0]]


def _call(fn: Callable[[], Any], what: str) -> Any:
    """One retry: an idle gRPC channel can be closed by the server (GOAWAY "too many pings" from pymilvus's
    10 s keep-alive) and the first call after that fails while the channel reconnects."""
    for attempt in (1, 2):
        try:
            return fn()
        except MilvusException as exc:
            if attempt == 2 or exc.code not in _RETRYABLE:
                raise DependencyUnavailable(f"{what} failed: {exc.message}", dependency="milvus",
                                            retry_after_s=5) from exc
            time.sleep(0.05)
    raise AssertionError("unreachable")


def vector_of(client: Any, collection: str, item_id: str) -> list[float] | None:
    rows = _call(lambda: client.get(collection, ids=[item_id], output_fields=["vector"]), "vector lookup")
    return list(rows[0]["vector"]) if rows else None
