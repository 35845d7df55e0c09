"""Facet counts over a retrieval's candidate pool (brand, price range, RAM, storage, rating), and the
explicit filter each facet value stands for, so a storefront can show "Samsung (12)" and send it back.

A count is the number of distinct models (variant groups) in the pool that the value's filter keeps: the
cards a shopper would see, not the colours behind them. Numeric values are inclusive ranges written
``"lo-hi"``, ``"lo-"`` or ``"-hi"`` (decision 0711). Price ranges are in the catalog's currency (``PRICE_EDGES``);
they stand for the filters ``price_min_inr`` / ``price_max_inr``, which mean the catalog's price (decision 0801)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pickwise_common.schemas import Constraints, Facets, FacetValue, Item

FACET_NAMES = ("brand", "price", "ram", "storage", "rating")
# inclusive bounds, so an item priced exactly on a boundary counts in both ranges, as both filters keep it
PRICE_EDGES_INR = (10_000, 15_000, 20_000, 30_000, 50_000)
PRICE_EDGES: dict[str, tuple[float, ...]] = {"INR": PRICE_EDGES_INR, "GBP": (1, 2, 5, 10, 20)}
CURRENCY_SYMBOLS = {"INR": "₹", "GBP": "£"}
RATING_MINS = (4.5, 4.0, 3.5, 3.0)
# RAM/storage below 1 GB are feature-phone sizes in MB/KB: one bucket, bounded just under 1 GB
SUB_GB_MAX = 0.999
MAX_BRANDS = 15
_FIELDS = {"price": ("price_min_inr", "price_max_inr"), "ram": ("ram_gb_min", "ram_gb_max"),
           "storage": ("storage_gb_min", "storage_gb_max"), "rating": ("rating_min", None)}


def _num(value: float) -> str:
    return f"{value:g}"


def _range(lo: float | None, hi: float | None) -> str:
    return f"{'' if lo is None else _num(lo)}-{'' if hi is None else _num(hi)}"


def parse_range(value: str) -> tuple[float | None, float | None]:
    """``"10000-15000"`` → (10000, 15000); ``"50000-"`` → (50000, None); ``"-0.999"`` → (None, 0.999)."""
    lo, sep, hi = value.partition("-")
    if not sep:
        raise ValueError(f"{value!r} is not a range 'lo-hi'")
    bounds = (float(lo) if lo.strip() else None, float(hi) if hi.strip() else None)
    if bounds == (None, None):
        raise ValueError(f"{value!r} bounds nothing")
    return bounds


def facet_filter(name: str, value: str) -> Constraints:
    """The explicit filter a facet value stands for (what a client sends back in ``filters``)."""
    if name == "brand":
        return Constraints(brands=[value])
    if name not in _FIELDS:
        raise ValueError(f"unknown facet {name!r}")
    lo, hi = parse_range(value)
    lo_field, hi_field = _FIELDS[name]
    fields: dict[str, Any] = {lo_field: lo}
    if hi_field is not None:
        fields[hi_field] = hi
    elif hi is not None:
        raise ValueError(f"facet {name!r} takes only a lower bound")
    return Constraints(**fields)


def _money(value: float, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    number = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def _gb(value: float) -> str:
    return f"{_num(value / 1024)} TB" if value >= 1024 and value % 1024 == 0 else f"{_num(value)} GB"


def _price_ranges(currency: str = "INR") -> list[tuple[float | None, float | None, str]]:
    edges: list[float | None] = [None, *PRICE_EDGES.get(currency, PRICE_EDGES_INR), None]
    out = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        if lo is None:
            label = f"Under {_money(hi or 0, currency)}"
        elif hi is None:
            label = f"{_money(lo, currency)} and above"
        else:
            label = f"{_money(lo, currency)} – {_money(hi, currency)}"
        out.append((lo, hi, label))
    return out


class _Models:
    """Counts distinct models (variant groups) among subsets of the candidates: group codes renumbered
    0..n-1 over the candidates (a mark per catalog group, no sort), so each count is one bincount of the
    candidates' size; a count of rows when every candidate is its own model."""

    def __init__(self, groups: np.ndarray, n_groups: int) -> None:
        present = np.zeros(n_groups, dtype=bool)
        present[groups] = True
        self.size = int(np.count_nonzero(present))
        self.distinct = self.size == groups.size
        self.codes = groups if self.distinct else (np.cumsum(present) - 1)[groups]

    def count(self, keep: np.ndarray) -> int:
        if self.distinct:
            return int(np.count_nonzero(keep))
        return int(np.count_nonzero(np.bincount(self.codes[keep], minlength=self.size)))

    def per_value(self, codes: np.ndarray, n_values: int) -> np.ndarray:
        """Models per value code (``codes`` parallel to the candidates, -1 = none)."""
        known = codes >= 0
        if self.distinct:
            return np.bincount(codes[known], minlength=n_values)
        pairs = np.unique(self.codes[known] * n_values + codes[known])
        return np.bincount(pairs % n_values, minlength=n_values)


def _count_ranges(name: str, column: np.ndarray, models: _Models,
                  ranges: list[tuple[float | None, float | None, str]]) -> list[FacetValue]:
    out = []
    known = ~np.isnan(column)  # NaN (unknown) is inside no range
    with np.errstate(invalid="ignore"):
        for lo, hi, label in ranges:
            keep = known.copy()
            if lo is not None:
                keep &= column >= lo
            if hi is not None:
                keep &= column <= hi
            count = models.count(keep)
            if count:
                out.append(FacetValue(value=_range(lo, hi if name != "rating" else None), label=label, count=count))
    return out


@dataclass(frozen=True)
class _Columns:
    groups: np.ndarray   # variant group of each item, as an integer code
    n_groups: int
    brand_names: list[str]   # distinct brands, in catalog order
    brands: np.ndarray   # brand code of each item (-1: no brand)
    numbers: dict[str, np.ndarray]
    sizes: dict[str, np.ndarray]   # per size attribute: its distinct known values in the catalog, ascending
    size_codes: dict[str, np.ndarray]   # per size attribute, per item: the index of its value in sizes (-1: unknown)

    @classmethod
    def of(cls, items: Sequence[Item]) -> _Columns:
        codes: dict[str, int] = {}
        groups = np.array([codes.setdefault(i.group_id, len(codes)) for i in items], dtype=np.int64)
        brand_codes: dict[str, int] = {}
        brands = np.array([brand_codes.setdefault(i.brand, len(brand_codes)) if i.brand else -1 for i in items],
                          dtype=np.int64)
        numbers = {attr: np.array([np.nan if (v := getattr(i, attr)) is None else v for i in items], dtype=np.float64)
                   for attr in ("price", "ram_gb", "storage_gb", "rating")}
        sizes = {attr: np.unique(numbers[attr][~np.isnan(numbers[attr])]) for attr in ("ram_gb", "storage_gb")}
        size_codes = {attr: np.where(np.isnan(numbers[attr]), -1, np.searchsorted(sizes[attr], numbers[attr]))
                      for attr in sizes}
        return cls(groups, len(codes), list(brand_codes), brands, numbers, sizes, size_codes)


_CACHE_SIZE = 8   # a few catalogs, each loaded once or twice at a time
_cached: list[tuple[Sequence[Item], _Columns]] = []


def _columns(items: Sequence[Item]) -> _Columns:
    """Columns of a catalog's items, built once per loaded catalog (a new load is a new list)."""
    for held, columns in _cached:
        if held is items:
            return columns
    columns = _Columns.of(items)
    _cached.insert(0, (items, columns))
    del _cached[_CACHE_SIZE:]
    return columns


def _brands(columns: _Columns, rows: np.ndarray, models: _Models,
            order: Callable[[np.ndarray], np.ndarray] | None) -> list[FacetValue]:
    """Brands by count of models, then by name ignoring case; brands equal on both (names differing only in case)
    in the order the candidates first show them, ``order`` being the candidates' order (default: as given)."""
    codes = columns.brands[rows]
    counts = models.per_value(codes, len(columns.brand_names))
    present = np.flatnonzero(counts)
    ranked = sorted(present.tolist(), key=lambda b: (-int(counts[b]), columns.brand_names[b].lower()))
    keys = [(-int(counts[b]), columns.brand_names[b].lower()) for b in ranked]
    if len(set(keys)) < len(keys):  # a tie only names in other case can make: settle it by first appearance
        tied = [b for b, key in zip(ranked, keys, strict=True) if keys.count(key) > 1]
        shown = rows[np.isin(codes, tied)]
        shown = order(shown) if order is not None else shown
        _, first = np.unique(columns.brands[shown], return_index=True)
        seen = dict(zip(np.unique(columns.brands[shown]).tolist(), first.tolist(), strict=True))
        ranked.sort(key=lambda b: (-int(counts[b]), columns.brand_names[b].lower(), seen.get(b, -1)))
    return [FacetValue(value=columns.brand_names[b], label=columns.brand_names[b], count=int(counts[b]))
            for b in ranked[:MAX_BRANDS]]


def _sizes(columns: _Columns, attr: str, rows: np.ndarray, models: _Models) -> list[FacetValue]:
    """One value per size of 1 GB and more the candidates have (the range "v-v"), after one bucket for sizes
    up to ``SUB_GB_MAX``, when any candidate has one."""
    values, codes = columns.sizes[attr], columns.size_codes[attr][rows]
    out = []
    sub_gb = int(np.searchsorted(values, SUB_GB_MAX, side="right"))   # codes below this are sub-GB sizes
    if sub_gb and (count := models.count((codes >= 0) & (codes < sub_gb))):
        out.append(FacetValue(value=_range(None, SUB_GB_MAX), label="Under 1 GB", count=count))
    per_value = models.per_value(codes, values.size)
    for code in range(int(np.searchsorted(values, 1.0)), values.size):
        if per_value[code]:
            value = float(values[code])
            out.append(FacetValue(value=_range(value, value), label=_gb(value), count=int(per_value[code])))
    return out


def facet_counts(items: Sequence[Item], candidates: Sequence[int] | np.ndarray, currency: str = "INR",
                 order: Callable[[np.ndarray], np.ndarray] | None = None) -> Facets:
    """Facet values present among the candidates (distinct row numbers into ``items``, the catalog), each with
    its count of distinct models; values no candidate has are left out. Brands by count (the top
    ``MAX_BRANDS``; a catalog without brands has no brand facet), numeric facets in value order, price ranges
    in ``currency``. ``order`` puts candidates in result order (rows in, the same rows ordered out), for brands
    that tie; without it the candidates' own order counts."""
    if not len(candidates):
        return {}
    columns = _columns(items)
    rows = np.asarray(candidates, dtype=np.int64)
    models = _Models(columns.groups[rows], columns.n_groups)
    facets: Facets = {"brand": _brands(columns, rows, models, order)}
    facets["price"] = _count_ranges("price", columns.numbers["price"][rows], models, _price_ranges(currency))
    facets["ram"] = _sizes(columns, "ram_gb", rows, models)
    facets["storage"] = _sizes(columns, "storage_gb", rows, models)
    facets["rating"] = _count_ranges("rating", columns.numbers["rating"][rows], models,
                                     [(r, None, f"{_num(r)}★ & up") for r in RATING_MINS])
    return {name: values for name, values in facets.items() if values}
