"""Dense retrieval in Milvus: the constraints become a Milvus filter expression (scalar fields declared in
the collection schema by ingest), so filtering happens inside the vector search."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pymilvus.exceptions import MilvusException

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.schemas import Constraints

_RETRYABLE = {1, 2}  # Milvus client codes: unexpected error, connect failed (channel unavailable)


def _str_list(values: list[str]) -> str:
    return json.dumps(list(values))


def milvus_filter(c: Constraints) -> str:
    """Constraints → Milvus boolean expression ('' = no filter). Unknown numbers are stored as -1, so a
    lower bound excludes them by itself and an upper bound adds ``>= 0``."""
    parts: list[str] = []
    if c.brands:
        parts.append(f"brand in {_str_list(c.brands)}")
    if c.brands_exclude:
        parts.append(f"brand not in {_str_list(c.brands_exclude)}")
    for field, lo, hi in (("price_inr", c.price_min_inr, c.price_max_inr), ("ram_gb", c.ram_gb_min, c.ram_gb_max),
                          ("storage_gb", c.storage_gb_min, c.storage_gb_max), ("rating", c.rating_min, None),
                          ("discount_pct", c.discount_pct_min, None)):
        if lo is not None:
            parts.append(f"{field} >= {float(lo)!r}")
        if hi is not None:
            parts.append(f"({field} >= 0 and {field} <= {float(hi)!r})")
    if c.price_bands:
        parts.append(f"price_band in {_str_list(c.price_bands)}")
    if c.feature_phone is not None:
        parts.append(f"feature_phone == {'true' if c.feature_phone else 'false'}")
    if c.colors:
        parts.append("(" + " or ".join(f'color like "%{col}%"' for col in c.colors if col.isalpha()) + ")")
    return " and ".join(parts)


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
