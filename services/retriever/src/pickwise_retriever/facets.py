"""Facet counts over a retrieval's candidate pool (brand, price range, RAM, storage, rating), and the
explicit filter each facet value stands for, so a storefront can show "Samsung (12)" and send it back.

A count is the number of distinct models (variant groups) in the pool that the value's filter keeps: the
cards a shopper would see, not the colours behind them. Numeric values are inclusive ranges written
``"lo-hi"``, ``"lo-"`` or ``"-hi"`` (decision 0711). Price ranges are in the catalog's currency (``PRICE_EDGES``);
they stand for the filters ``price_min_inr`` / ``price_max_inr``, which mean the catalog's price (decision 0801)."""

from __future__ import annotations

from collections.abc import Sequence
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


def _size_values(values: set[float]) -> list[tuple[float | None, float | None, str]]:
    out: list[tuple[float | None, float | None, str]] = []
    if any(v < 1 for v in values):
        out.append((None, SUB_GB_MAX, "Under 1 GB"))
    out += [(v, v, _gb(v)) for v in sorted(v for v in values if v >= 1)]
    return out


def _count_ranges(name: str, column: np.ndarray, groups: np.ndarray,
                  ranges: list[tuple[float | None, float | None, str]]) -> list[FacetValue]:
    out = []
    with np.errstate(invalid="ignore"):  # NaN (unknown) is inside no range
        for lo, hi, label in ranges:
            keep = ~np.isnan(column)
            if lo is not None:
                keep &= column >= lo
            if hi is not None:
                keep &= column <= hi
            count = int(np.count_nonzero(np.bincount(groups[keep])))
            if count:
                out.append(FacetValue(value=_range(lo, hi if name != "rating" else None), label=label, count=count))
    return out


@dataclass(frozen=True)
class _Columns:
    groups: np.ndarray   # variant group of each item, as an integer code
    brands: list[str]
    numbers: dict[str, np.ndarray]

    @classmethod
    def of(cls, items: Sequence[Item]) -> _Columns:
        codes: dict[str, int] = {}
        groups = np.array([codes.setdefault(i.group_id, len(codes)) for i in items], dtype=np.int64)
        numbers = {attr: np.array([np.nan if (v := getattr(i, attr)) is None else v for i in items], dtype=np.float64)
                   for attr in ("price", "ram_gb", "storage_gb", "rating")}
        return cls(groups, [i.brand for i in items], numbers)


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


def facet_counts(items: Sequence[Item], candidates: Sequence[int], currency: str = "INR") -> Facets:
    """Facet values present among the candidates (row numbers into ``items``, the catalog), each with its
    count of distinct models; values no candidate has are left out. Brands by count (the top
    ``MAX_BRANDS``; a catalog without brands has no brand facet), numeric facets in value order, price ranges
    in ``currency``."""
    if not len(candidates):
        return {}
    columns = _columns(items)
    rows = np.asarray(candidates, dtype=np.int64)
    groups = columns.groups[rows]
    brands: dict[str, set[int]] = {}
    for n, group in zip(rows.tolist(), groups.tolist(), strict=True):
        if columns.brands[n]:
            brands.setdefault(columns.brands[n], set()).add(group)
    facets: Facets = {"brand": [FacetValue(value=brand, label=brand, count=len(members)) for brand, members in
                                sorted(brands.items(), key=lambda kv: (-len(kv[1]), kv[0].lower()))][:MAX_BRANDS]}
    ram, storage = columns.numbers["ram_gb"][rows], columns.numbers["storage_gb"][rows]
    facets["price"] = _count_ranges("price", columns.numbers["price"][rows], groups, _price_ranges(currency))
    facets["ram"] = _count_ranges("ram", ram, groups, _size_values(set(ram[~np.isnan(ram)].tolist())))
    facets["storage"] = _count_ranges("storage", storage, groups,
                                      _size_values(set(storage[~np.isnan(storage)].tolist())))
    facets["rating"] = _count_ranges("rating", columns.numbers["rating"][rows], groups,
                                     [(r, None, f"{_num(r)}★ & up") for r in RATING_MINS])
    return {name: values for name, values in facets.items() if values}
