"""Catalog cleaning at ingest: rules that repair known kinds of error in normalised items, then expectations
(pandera) that every served item must meet; an item that still fails one is quarantined with the reason.

Repairs (each listed in the ingest report with the item, the rule, and the values before and after):
- ``rating_holds_price``: the rating column carries a copy of the price (54999.0) → rating unknown.
- ``lone_ram_is_storage``: a budget phone with an implausible RAM figure and no storage ("32 GB RAM", nan —
  the Galaxy M20 row) lists its storage in the RAM column → that figure is the storage; the RAM is taken from
  the same model's variant with that storage when exactly one RAM size is listed for it, else unknown.
- ``ram_unit_is_mb``: a keypad phone with storage in MB and "8 GB RAM" → the RAM is 8 MB.
- ``storage_off_standard_size``: 129 or 130 GB is 128 GB (storage comes in standard sizes).

Expectations (``ITEM_SCHEMA``): price > 0; rating in 0..5; RAM in (0, 24] GB and storage in (0, 2048] GB; RAM
below storage on a smartphone (both at least 1 GB); RAM and storage plausible for the price band
(``PLAUSIBLE_BY_PRICE``). The catalog has no release year, so "era" is read through the price band: the
ceilings are set above what the phones of every band in this catalog list (a 2024 Tecno Spark 20 has 8 GB
at ₹8,999), so only errors cross them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pandera.pandas as pa

from pickwise_common.schemas import Item

# Bump when a rule or an expectation changes: ingest re-loads a catalog whose cleaning version differs.
CLEANING_VERSION = 1

# price ceiling (exclusive, ₹) → the most RAM / storage (GB) a phone under it plausibly lists
PLAUSIBLE_BY_PRICE: tuple[tuple[float, float, float], ...] = (
    (5_000, 4, 32),
    (10_000, 8, 256),
    (20_000, 12, 512),
    (float("inf"), 24, 2048),
)
STANDARD_STORAGE_GB = (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
# "32 GB RAM" on a phone under this price is not RAM
LONE_RAM_BUDGET_INR = 20_000


def ceilings(price_inr: float) -> tuple[float, float]:
    """(max RAM GB, max storage GB) plausible at this price."""
    for below, ram, storage in PLAUSIBLE_BY_PRICE:
        if price_inr < below:
            return ram, storage
    return PLAUSIBLE_BY_PRICE[-1][1], PLAUSIBLE_BY_PRICE[-1][2]


@dataclass(frozen=True)
class Sizes:
    ram_gb: float | None
    storage_gb: float | None


@dataclass
class Repair:
    rule: str
    before: dict[str, Any]
    after: dict[str, Any]


# rule(item, sizes known for each (brand, model)) → the fields to change, or None when the rule does not apply
RepairRule = Callable[[Item, dict[tuple[str, str], list[Sizes]]], dict[str, Any] | None]


def _price(item: Item) -> float:
    """The item's price (the rules are about the INR phone catalog; ``Item`` always has one)."""
    return float(item.price or 0.0)


def rating_holds_price(item: Item, _siblings: dict[tuple[str, str], list[Sizes]]) -> dict[str, Any] | None:
    raw = item.attrs.get("rating_raw")
    if raw is None or 0 <= raw <= 5:
        return None
    return {"rating": None}


def lone_ram_is_storage(item: Item, siblings: dict[tuple[str, str], list[Sizes]]) -> dict[str, Any] | None:
    ram, storage = item.ram_gb, item.storage_gb
    if ram is None or storage is not None or _price(item) >= LONE_RAM_BUDGET_INR:
        return None
    if ram <= ceilings(_price(item))[0] or ram not in STANDARD_STORAGE_GB:
        return None
    rams = {s.ram_gb for s in siblings.get((item.brand, item.model), []) if s.storage_gb == ram and s.ram_gb}
    return {"ram_gb": rams.pop() if len(rams) == 1 else None, "storage_gb": ram}


def ram_unit_is_mb(item: Item, _siblings: dict[tuple[str, str], list[Sizes]]) -> dict[str, Any] | None:
    ram, storage = item.ram_gb, item.storage_gb
    if ram is None or storage is None or ram < 1 or storage >= 1 or _price(item) >= 10_000:
        return None
    return {"ram_gb": round(ram / 1024, 4)}


def storage_off_standard_size(item: Item, _siblings: dict[tuple[str, str], list[Sizes]]) -> dict[str, Any] | None:
    storage = item.storage_gb
    if storage is None or storage < 4 or storage in STANDARD_STORAGE_GB:
        return None
    nearest = min(STANDARD_STORAGE_GB, key=lambda size: abs(size - storage))
    return {"storage_gb": float(nearest)} if abs(nearest - storage) / nearest <= 0.03 else None


REPAIRS: tuple[tuple[str, RepairRule], ...] = (
    ("rating_holds_price", rating_holds_price),
    ("lone_ram_is_storage", lone_ram_is_storage),
    ("ram_unit_is_mb", ram_unit_is_mb),
    ("storage_off_standard_size", storage_off_standard_size),
)


def _smartphone_ram_below_storage(df: pd.DataFrame) -> pd.Series:
    both = df.ram_gb.notna() & df.storage_gb.notna() & (df.ram_gb >= 1) & (df.storage_gb >= 1)
    return ~both | (df.ram_gb < df.storage_gb)


def _ram_plausible_for_price(df: pd.DataFrame) -> pd.Series:
    limit = df.price.map(lambda p: ceilings(p)[0])
    return df.ram_gb.isna() | (df.ram_gb <= limit)


def _storage_plausible_for_price(df: pd.DataFrame) -> pd.Series:
    limit = df.price.map(lambda p: ceilings(p)[1])
    return df.storage_gb.isna() | (df.storage_gb <= limit)


ITEM_SCHEMA = pa.DataFrameSchema(
    {
        "item_id": pa.Column(str, unique=True),
        "price": pa.Column(float, pa.Check.gt(0, error="price must be positive")),
        "rating": pa.Column(float, pa.Check.in_range(0, 5, error="rating must be in 0..5"), nullable=True),
        "ram_gb": pa.Column(float, pa.Check.in_range(0, 24, include_min=False, error="RAM must be in (0, 24] GB"),
                            nullable=True),
        "storage_gb": pa.Column(float, pa.Check.in_range(0, 2048, include_min=False,
                                                         error="storage must be in (0, 2048] GB"), nullable=True),
    },
    checks=[
        pa.Check(_smartphone_ram_below_storage, error="RAM not below storage on a smartphone"),
        pa.Check(_ram_plausible_for_price, error="RAM implausible for the price band"),
        pa.Check(_storage_plausible_for_price, error="storage implausible for the price band"),
    ],
    coerce=True,
)


def frame(items: list[Item]) -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": [i.item_id for i in items],
        "price": [i.price for i in items],
        "rating": [i.rating for i in items],
        "ram_gb": [i.ram_gb for i in items],
        "storage_gb": [i.storage_gb for i in items],
    }, dtype=object).astype({"price": float, "rating": float, "ram_gb": float, "storage_gb": float})


def violations(items: list[Item]) -> dict[int, list[str]]:
    """Position of each item that fails an expectation → the reasons."""
    if not items:
        return {}
    try:
        ITEM_SCHEMA.validate(frame(items), lazy=True)
    except pa.errors.SchemaErrors as exc:
        out: dict[int, list[str]] = defaultdict(list)
        for _, case in exc.failure_cases.iterrows():
            if pd.isna(case["index"]):
                continue
            reason = str(case["check"])
            if reason not in out[int(case["index"])]:
                out[int(case["index"])].append(reason)
        return dict(out)
    return {}


@dataclass
class Cleaned:
    items: list[Item]
    repaired: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)


def clean(items: list[Item], rebuild: Callable[[Item, dict[str, Any]], Item]) -> Cleaned:
    """Apply the repair rules in order, then quarantine what still fails an expectation. ``rebuild`` makes the
    item with changed fields (title, group and feature-phone flag follow the sizes)."""
    siblings: dict[tuple[str, str], list[Sizes]] = defaultdict(list)
    for item in items:
        siblings[(item.brand, item.model)].append(Sizes(item.ram_gb, item.storage_gb))
    out = Cleaned(items=[])
    repaired_items: list[Item] = []
    for item in items:
        for rule, repair in REPAIRS:
            change = repair(item, siblings)
            if change is None:
                continue
            before = {k: item.attrs.get("rating_raw") if k == "rating" else getattr(item, k) for k in change}
            item = rebuild(item, change)
            item.attrs.setdefault("repairs", []).append(rule)
            out.repaired.append({"item_id": item.item_id, "row": item.attrs.get("row"), "title": item.title,
                                 "rule": rule, "before": before, "after": change})
        repaired_items.append(item)
    failing = violations(repaired_items)
    for n, item in enumerate(repaired_items):
        if n in failing:
            out.quarantined.append({"item_id": item.item_id, "row": item.attrs.get("row"), "title": item.title,
                                    "reasons": failing[n]})
        else:
            out.items.append(item)
    return out
