"""Dense retrieval in Milvus: the constraints become a Milvus filter expression (scalar fields declared in
the collection schema by ingest), so filtering happens inside the vector search."""

from __future__ import annotations

import json
from typing import Any

from pymilvus.exceptions import MilvusException

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.schemas import Constraints


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
    try:
        hits = client.search(collection, data=[vector], filter=expr, limit=min(limit, 16384),
                             output_fields=["item_id"], search_params=search_params or {"metric_type": "IP"},
                             anns_field="vector")
    except MilvusException as exc:
        raise DependencyUnavailable(f"vector search failed: {exc.message}", headers={"Retry-After": "5"}) from exc
    return [(str(h["entity"]["item_id"]), float(h["distance"])) for h in hits[0]]


def vector_of(client: Any, collection: str, item_id: str) -> list[float] | None:
    try:
        rows = client.get(collection, ids=[item_id], output_fields=["vector"])
    except MilvusException as exc:
        raise DependencyUnavailable(f"vector lookup failed: {exc.message}", headers={"Retry-After": "5"}) from exc
    return list(rows[0]["vector"]) if rows else None
