"""The catalogs held in memory by the retriever, one ``Catalog`` per catalog name (decision 0801): items loaded
from Postgres, columnar arrays for fast filter masks, variant groups, the BM25 index (from the catalog's
``catalog_state`` row, rebuilt when absent)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pickwise_common import constraints
from pickwise_common.bm25 import Bm25sIndex, item_text, tokenize
from pickwise_common.catalogs import CATALOGS, DEFAULT_CATALOG
from pickwise_common.constraints import Columns
from pickwise_common.schemas import Constraints, Item

log = logging.getLogger("pickwise.retriever.catalog")

_ITEM_COLUMNS = ("item_id, catalog, title, brand, model, color, category, ram_gb, storage_gb, price, currency, "
                 "price_inr, original_price_inr, discount_pct, rating, price_band, group_id, attrs")


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
    name: str = DEFAULT_CATALOG
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
        self.price = self.columns.numbers["price"]
        self.rating = self.columns.numbers["rating"]
        self.model_tokens = [frozenset(tokenize(i.model)) for i in items]
        self.series = [model_series(i.model) for i in items]
        # the same facts as arrays, so fusion and ordering run in numpy over a pool of any size
        self.n_groups = len(self.groups)
        self.discount_pct = np.array([i.discount_pct or 0.0 for i in items], dtype=np.float64)
        self.rating_or_zero = np.where(np.isnan(self.rating), 0.0, self.rating)
        self.model_size = np.array([len(t) for t in self.model_tokens], dtype=np.int64)
        postings: dict[str, list[int]] = {}
        for n, tokens in enumerate(self.model_tokens):
            for token in tokens:
                postings.setdefault(token, []).append(n)
        self.model_postings = {token: np.array(rows, dtype=np.int64) for token, rows in postings.items()}
        self.series_codes: dict[tuple[str, ...], int] = {}
        self.series_code = np.array([self.series_codes.setdefault(s, len(self.series_codes)) for s in self.series],
                                    dtype=np.int64)
        # each sort intent's key per item, smaller first (an unknown rating sorts as 0, after every rated item)
        self.sort_key = {"price_asc": self.price, "price_desc": -self.price,
                         "rating_desc": np.where(np.isnan(self.rating), 0.0, -self.rating)}
        # the last popularity fallback's order: the rating, or in a catalog without ratings (retail) the number
        # of invoices the item was on in the source (what ingest writes to catalog_by_rating_key)
        self.fallback_score = [float(i.rating) if i.rating is not None else float(i.attrs.get("invoices", 0))
                               for i in items]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def currency(self) -> str:
        return CATALOGS[self.name].currency if self.name in CATALOGS else "INR"

    @classmethod
    def from_items(cls, items: list[Item], bm25: Any = None, name: str = DEFAULT_CATALOG) -> Catalog:
        if bm25 is None:
            bm25 = Bm25sIndex.build([tokenize(item_text(i)) for i in items])
        return cls(items, bm25, name)

    @staticmethod
    async def versions(pool: Any) -> dict[str, str]:
        """Each served catalog's version: it changes whenever an ingest of that catalog finishes. Rows of names
        that are not served catalogs (left by an older ingest) are not catalogs to load."""
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT catalog, updated_at::text AS v, item_count FROM catalog_state")
        return {r["catalog"]: f"{r['v']}/{r['item_count']}" for r in rows if r["catalog"] in CATALOGS}

    @classmethod
    async def load(cls, pool: Any, name: str = DEFAULT_CATALOG) -> Catalog:
        """The items of one catalog, in item_id order; the stored BM25 index when it covers them."""
        async with pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_ITEM_COLUMNS} FROM items WHERE catalog = $1 ORDER BY item_id", name)
            state = await conn.fetchrow("SELECT item_count, bm25_index FROM catalog_state WHERE catalog = $1", name)
        items = []
        for row in rows:
            data = dict(row)
            data["attrs"] = json.loads(data["attrs"]) if isinstance(data["attrs"], str) else data["attrs"]
            items.append(Item.model_validate(data))
        bm25 = None
        if state is not None and state["bm25_index"] and state["item_count"] == len(items):
            bm25 = Bm25sIndex.from_bytes(bytes(state["bm25_index"]), len(items))
        catalog = cls.from_items(items, bm25, name)
        log.info("catalog %s loaded: %d items, %d groups, bm25 %s", name, len(items), len(catalog.groups),
                 "from ingest" if bm25 is not None else "rebuilt")
        return catalog

    # ---------------------------------------------------------------- filters

    def mask(self, c: Constraints) -> np.ndarray:
        """Items satisfying every constraint: the shared constraint model over this catalog's columns."""
        return constraints.mask(self.columns, c)

    def results(self, mask: np.ndarray, group_variants: bool = True) -> int:
        """How many results the masked items make: models (variant groups), or items when not grouped."""
        if not group_variants:
            return int(np.count_nonzero(mask))
        present = np.zeros(self.n_groups, dtype=bool)  # a mark per group: O(items), no sort
        present[self.group_of[mask]] = True
        return int(np.count_nonzero(present))

    def item(self, item_id: str) -> Item | None:
        n = self.index_of.get(item_id)
        return None if n is None else self.items[n]

