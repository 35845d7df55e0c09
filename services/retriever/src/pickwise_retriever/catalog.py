"""The catalog held in memory by the retriever: items loaded from Postgres, columnar arrays for fast
filter masks, variant groups, the BM25 index (from ``catalog_state``, rebuilt when absent)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pickwise_common.bm25 import Bm25sIndex, item_text, tokenize
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


def _col(items: list[Item], name: str) -> np.ndarray:
    return np.array([np.nan if getattr(i, name) is None else float(getattr(i, name)) for i in items],
                    dtype=np.float64)


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
        self.price = _col(items, "price_inr")
        self.ram = _col(items, "ram_gb")
        self.storage = _col(items, "storage_gb")
        self.rating = _col(items, "rating")
        self.discount = _col(items, "discount_pct")
        self.brand = np.array([i.brand.lower() for i in items], dtype=object)
        self.band = np.array([i.price_band for i in items], dtype=object)
        self.color = np.array([(i.color or "").lower() for i in items], dtype=object)
        self.feature = np.array([bool(i.attrs.get("feature_phone")) for i in items], dtype=bool)
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
        """Items satisfying every constraint (unknown values never satisfy a bound)."""
        m = np.ones(len(self.items), dtype=bool)
        with np.errstate(invalid="ignore"):
            if c.brands:
                m &= np.isin(self.brand, [b.lower() for b in c.brands])
            if c.brands_exclude:
                m &= ~np.isin(self.brand, [b.lower() for b in c.brands_exclude])
            for column, lo, hi in ((self.price, c.price_min_inr, c.price_max_inr),
                                   (self.ram, c.ram_gb_min, c.ram_gb_max),
                                   (self.storage, c.storage_gb_min, c.storage_gb_max),
                                   (self.rating, c.rating_min, None),
                                   (self.discount, c.discount_pct_min, None)):
                if lo is not None:
                    m &= column >= lo
                if hi is not None:
                    m &= column <= hi
            if c.price_bands:
                m &= np.isin(self.band, list(c.price_bands))
            if c.feature_phone is not None:
                m &= self.feature == c.feature_phone
            if c.colors:
                m &= np.array([any(col in name for col in c.colors) for name in self.color], dtype=bool)
        return m

    def item(self, item_id: str) -> Item | None:
        n = self.index_of.get(item_id)
        return None if n is None else self.items[n]


def satisfies(item: Item, c: Constraints) -> dict[str, bool]:
    """Each constraint that is set: whether this item meets it."""
    out: dict[str, bool] = {}

    def bound(name: str, value: float | None, lo: float | None, hi: float | None) -> None:
        if lo is not None:
            out[f"{name}_min" if not name.startswith("price") else "price_min_inr"] = \
                value is not None and value >= lo
        if hi is not None:
            out[f"{name}_max" if not name.startswith("price") else "price_max_inr"] = \
                value is not None and value <= hi

    if c.brands:
        out["brands"] = item.brand.lower() in {b.lower() for b in c.brands}
    if c.brands_exclude:
        out["brands_exclude"] = item.brand.lower() not in {b.lower() for b in c.brands_exclude}
    bound("price", item.price_inr, c.price_min_inr, c.price_max_inr)
    bound("ram_gb", item.ram_gb, c.ram_gb_min, c.ram_gb_max)
    bound("storage_gb", item.storage_gb, c.storage_gb_min, c.storage_gb_max)
    if c.rating_min is not None:
        out["rating_min"] = item.rating is not None and item.rating >= c.rating_min
    if c.discount_pct_min is not None:
        out["discount_pct_min"] = item.discount_pct is not None and item.discount_pct >= c.discount_pct_min
    if c.price_bands:
        out["price_bands"] = item.price_band in c.price_bands
    if c.feature_phone is not None:
        out["feature_phone"] = bool(item.attrs.get("feature_phone")) == c.feature_phone
    if c.colors:
        out["colors"] = any(col in (item.color or "").lower() for col in c.colors)
    return out
