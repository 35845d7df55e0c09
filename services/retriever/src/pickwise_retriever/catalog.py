"""The catalog held in memory by the retriever: items loaded from Postgres, columnar arrays for fast
filter masks, variant groups, the BM25 index (from ``catalog_state``, rebuilt when absent)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pickwise_common import constraints
from pickwise_common.bm25 import Bm25sIndex, item_text, tokenize
from pickwise_common.constraints import Columns
from pickwise_common.schemas import Constraints, Item

log = logging.getLogger("pickwise.retriever.catalog")

_ITEM_COLUMNS = ("item_id, title, brand, model, color, category, ram_gb, storage_gb, price_inr, original_price_inr, "
                 "discount_pct, rating, price_band, group_id, attrs")


def model_series(text: str) -> tuple[str, ...]:
    """The series part of a model name: its words up to the first number, plus that token's letter prefix
    ("Galaxy M31" → (galaxy, m), "Note 11S" → (note,), "C11 2021" → (c,), "2.4" → ())."""
    series: list[str] = []
    for token in re.findall(r"[a-z0-9.]+", text.lower()):
        if any(ch.isdigit() for ch in token):
            prefix = re.match(r"[a-z]+", token)
            if prefix:
                series.append(prefix.group(0))
            break
        series.append(token)
    return tuple(series)


@dataclass
class Catalog:
    items: list[Item]
    bm25: Any
    index_of: dict[str, int] = field(init=False)
    groups: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        items = self.items
        self.index_of = {item.item_id: n for n, item in enumerate(items)}
        self.groups = {}
        for n, item in enumerate(items):
            self.groups.setdefault(item.group_id, []).append(n)
        positions = {group_id: g for g, group_id in enumerate(self.groups)}
        self.group_of = np.array([positions[i.group_id] for i in items], dtype=np.int64)
        self.columns = Columns.from_items(items)
        self.price = self.columns.numbers["price_inr"]
        self.rating = self.columns.numbers["rating"]
        self.model_tokens = [frozenset(tokenize(i.model)) for i in items]
        self.series = [model_series(i.model) for i in items]

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def from_items(cls, items: list[Item], bm25: Any = None) -> Catalog:
        if bm25 is None:
            bm25 = Bm25sIndex.build([tokenize(item_text(i)) for i in items])
        return cls(items, bm25)

    @staticmethod
    async def version(pool: Any) -> str:
        """Changes whenever an ingest finishes (the latest catalog_state update)."""
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT max(updated_at)::text AS v, count(*) AS n FROM catalog_state")
        return f"{row['v']}/{row['n']}"

    @classmethod
    async def load(cls, pool: Any) -> Catalog:
        """All items of every loaded catalog, in item_id order; the stored BM25 index when it covers them."""
        async with pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT catalog, {_ITEM_COLUMNS} FROM items ORDER BY catalog, item_id")
            states = await conn.fetch("SELECT catalog, item_count, bm25_index FROM catalog_state ORDER BY catalog")
        items = []
        for row in rows:
            data = dict(row)
            data.pop("catalog")
            data["attrs"] = json.loads(data["attrs"]) if isinstance(data["attrs"], str) else data["attrs"]
            items.append(Item.model_validate(data))
        bm25 = None
        if len(states) == 1 and states[0]["bm25_index"] and states[0]["item_count"] == len(items):
            bm25 = Bm25sIndex.from_bytes(bytes(states[0]["bm25_index"]), len(items))
        catalog = cls.from_items(items, bm25)
        log.info("catalog loaded: %d items, %d groups, bm25 %s", len(items), len(catalog.groups),
                 "from ingest" if bm25 is not None else "rebuilt")
        return catalog

    # ---------------------------------------------------------------- filters

    def mask(self, c: Constraints) -> np.ndarray:
        """Items satisfying every constraint: the shared constraint model over this catalog's columns."""
        return constraints.mask(self.columns, c)

    def results(self, mask: np.ndarray, group_variants: bool = True) -> int:
        """How many results the masked items make: models (variant groups), or items when not grouped."""
        return int(np.unique(self.group_of[mask]).size) if group_variants else int(mask.sum())

    def item(self, item_id: str) -> Item | None:
        n = self.index_of.get(item_id)
        return None if n is None else self.items[n]

