"""The one constraint model: which items meet a shopper's constraints (decision 0731).

One table (``DIMENSIONS``) names every constraint field, the item attribute it reads and how it compares. From
it come the per-item verdict (``satisfies``, ``matches``), the vectorised mask over a catalog (``mask``), the
Milvus filter expression (``milvus_filter``), the ranking features' verdicts (``feature_verdicts``), the
canonical form of explicit filters (``canonical_filters``, a 422 naming the field for a value it cannot read)
and the relaxation ladder used when too few items meet them all (``relaxations``, decision 0732).

Rules that hold in every one of them: an unknown number never satisfies a bound; brands compare case-insensitively;
a colour holds when its words appear, in order and adjacent, among the words of the item's colour name
("blue" and "ocean blue" match "Ocean Blue", "SeaBlue" is "sea blue", "gray" is "grey"); a feature phone is the
item's ``attrs["feature_phone"]`` flag (what ingest writes to Milvus).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from pickwise_common import vocabulary
from pickwise_common.errors import InvalidInput
from pickwise_common.schemas import Constraints, Item

Op = Literal["min", "max", "in", "not_in", "flag", "color"]


@dataclass(frozen=True)
class Dimension:
    field: str       # the Constraints field, and the key of Candidate.satisfies
    attribute: str   # the Item attribute, the catalog column and the Milvus scalar field it reads
    op: Op
    feature: str     # the ranking feature it feeds (sat_<feature>); several fields may feed one


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("brands", "brand", "in", "brand"),
    Dimension("brands_exclude", "brand", "not_in", "brand_exclude"),
    Dimension("price_min_inr", "price", "min", "price_min"),
    Dimension("price_max_inr", "price", "max", "price_max"),
    Dimension("ram_gb_min", "ram_gb", "min", "ram"),
    Dimension("ram_gb_max", "ram_gb", "max", "ram"),
    Dimension("storage_gb_min", "storage_gb", "min", "storage"),
    Dimension("storage_gb_max", "storage_gb", "max", "storage"),
    Dimension("rating_min", "rating", "min", "rating"),
    Dimension("discount_pct_min", "discount_pct", "min", "discount"),
    Dimension("price_bands", "price_band", "in", "price_band"),
    Dimension("feature_phone", "feature_phone", "flag", "feature_phone"),
    Dimension("colors", "color", "color", "color"),
)
FEATURES: tuple[str, ...] = tuple(dict.fromkeys(d.feature for d in DIMENSIONS))
NUMERIC_ATTRIBUTES: tuple[str, ...] = tuple(dict.fromkeys(d.attribute for d in DIMENSIONS if d.op in ("min", "max")))
STRING_ATTRIBUTES: tuple[str, ...] = ("brand", "price_band", "color")
MILVUS_UNKNOWN = -1.0  # ingest stores an unknown number as -1


# ---------------------------------------------------------------- one item

def item_value(item: Item, attribute: str) -> Any:
    """The value a dimension reads from an item."""
    if attribute == "feature_phone":
        return bool(item.attrs.get("feature_phone", False))
    return getattr(item, attribute)


def milvus_value(item: Item, attribute: str) -> Any:
    """The value ingest stores in the Milvus scalar field of that name."""
    value = item_value(item, attribute)
    if attribute == "color":
        return (value or "").lower()
    if attribute == "price_band":
        return value or ""  # a catalog without bands (retail) stores ""
    if attribute in NUMERIC_ATTRIBUTES:
        return MILVUS_UNKNOWN if value is None else float(value)
    return value


@lru_cache(maxsize=4096)
def color_words(text: str) -> tuple[str, ...]:
    """The words of a colour name, lower case: 'Rose-Gold' → (rose, gold); 'SeaBlue' → (sea, blue); gray → grey."""
    split = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return tuple(vocabulary.COLOR_SYNONYMS.get(w, w) for w in re.findall(r"[a-z]+", split.lower()))


def _contains(words: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    n = len(wanted)
    return n > 0 and any(words[i:i + n] == wanted for i in range(len(words) - n + 1))


def color_holds(item_color: str | None, wanted: Sequence[str]) -> bool:
    """Whether any wanted colour's words appear, in order and adjacent, among the item colour's words."""
    words = color_words(item_color or "")
    return any(_contains(words, color_words(w)) for w in wanted)


def predicate(dim: Dimension, c: Constraints) -> Callable[[Any], bool]:
    """The verdict of one set dimension as a function of the attribute value: the rule every other form
    derives from (the bound is read once, so a whole column can be judged with it)."""
    bound = getattr(c, dim.field)
    if dim.op == "min":
        return lambda value: value is not None and value >= bound
    if dim.op == "max":
        return lambda value: value is not None and value <= bound
    if dim.op in ("in", "not_in"):
        names = {b.casefold() for b in bound}
        if dim.op == "in":
            return lambda value: value is not None and value.casefold() in names
        return lambda value: value is None or value.casefold() not in names
    if dim.op == "flag":
        return lambda value: bool(value) == bound
    wanted = [color_words(w) for w in bound]
    return lambda value: any(_contains(color_words(value or ""), w) for w in wanted)


def value_holds(dim: Dimension, value: Any, c: Constraints) -> bool:
    return predicate(dim, c)(value)


def is_set(dim: Dimension, c: Constraints) -> bool:
    value = getattr(c, dim.field)
    return value is not None and value != []


def active(c: Constraints) -> list[Dimension]:
    return [d for d in DIMENSIONS if is_set(d, c)]


def satisfies(item: Item, c: Constraints) -> dict[str, bool]:
    """Each constraint that is set (by its field name): whether this item meets it."""
    return {d.field: value_holds(d, item_value(item, d.attribute), c) for d in active(c)}


def matches(item: Item, c: Constraints | None) -> bool:
    """Whether an item meets every constraint (None: no constraints)."""
    return c is None or all(satisfies(item, c).values())


def feature_verdicts(item: Item, c: Constraints) -> dict[str, bool | None]:
    """Per ranking feature (``FEATURES`` order): all its set fields hold, or None when none is set."""
    out: dict[str, bool | None] = dict.fromkeys(FEATURES)
    for d in active(c):
        holds = value_holds(d, item_value(item, d.attribute), c)
        out[d.feature] = holds if out[d.feature] is None else bool(out[d.feature]) and holds
    return out


# ---------------------------------------------------------------- a whole catalog

@dataclass
class Columns:
    """A catalog as columns: numbers as float64 (nan = unknown), strings as distinct values plus, per item,
    the index of its value, so a string verdict is computed once per distinct value."""

    numbers: dict[str, np.ndarray]
    flags: np.ndarray
    distinct: dict[str, list[Any]] = field(default_factory=dict)
    index: dict[str, np.ndarray] = field(default_factory=dict)
    milvus: dict[str, list[Any]] = field(default_factory=dict)   # per attribute, per distinct value: stored form

    @classmethod
    def from_items(cls, items: Sequence[Item]) -> Columns:
        numbers = {a: np.array([np.nan if (v := item_value(i, a)) is None else float(v) for i in items],
                               dtype=np.float64) for a in NUMERIC_ATTRIBUTES}
        flags = np.array([item_value(i, "feature_phone") for i in items], dtype=bool)
        columns = cls(numbers, flags)
        for attribute in STRING_ATTRIBUTES:
            positions: dict[Any, int] = {}
            stored: list[Any] = []
            index = np.empty(len(items), dtype=np.int64)
            for n, item in enumerate(items):
                value = item_value(item, attribute)
                if value not in positions:
                    positions[value] = len(positions)
                    stored.append(milvus_value(item, attribute))
                index[n] = positions[value]
            columns.distinct[attribute] = list(positions)
            columns.index[attribute] = index
            columns.milvus[attribute] = stored
        return columns

    def __len__(self) -> int:
        return len(self.flags)

    def verdict_by_value(self, dim: Dimension, c: Constraints) -> np.ndarray:
        holds = predicate(dim, c)
        return np.fromiter((holds(v) for v in self.distinct[dim.attribute]), dtype=bool,
                           count=len(self.distinct[dim.attribute]))


def dimension_mask(columns: Columns, dim: Dimension, c: Constraints) -> np.ndarray:
    """Items meeting one set dimension, as a boolean array (nan never satisfies a bound)."""
    bound = getattr(c, dim.field)
    if dim.op in ("min", "max"):
        column = columns.numbers[dim.attribute]
        with np.errstate(invalid="ignore"):
            return column >= bound if dim.op == "min" else column <= bound
    if dim.op == "flag":
        return columns.flags == bound
    return columns.verdict_by_value(dim, c)[columns.index[dim.attribute]]


def mask(columns: Columns, c: Constraints) -> np.ndarray:
    """Items meeting every constraint."""
    m = np.ones(len(columns), dtype=bool)
    for dim in active(c):
        m &= dimension_mask(columns, dim, c)
    return m


def _float32_literal(value: float) -> str:
    # Milvus FLOAT fields are float32: compare against the bound as float32 sees it, so 4.2 >= 4.2 holds there too
    return repr(float(np.float32(value)))


def milvus_filter(c: Constraints, columns: Columns) -> str:
    """Constraints → Milvus boolean expression ('' = no filter).

    Numbers become bounds (an upper bound adds ``>= 0``: unknowns are stored as -1). A string dimension becomes
    ``field in [...]`` over the catalog's stored values that meet it, computed by the same verdict as
    ``satisfies``, so no shopper text ever reaches the expression and it is always valid."""
    parts: list[str] = []
    for dim in active(c):
        bound = getattr(c, dim.field)
        name = dim.attribute
        if dim.op == "min":
            parts.append(f"{name} >= {_float32_literal(bound)}")
        elif dim.op == "max":
            parts.append(f"({name} >= 0 and {name} <= {_float32_literal(bound)})")
        elif dim.op == "flag":
            parts.append(f"{name} == {'true' if bound else 'false'}")
        else:
            verdict = columns.verdict_by_value(dim, c)
            stored = columns.milvus[name]
            if dim.op == "not_in":
                excluded = sorted({s for s, ok in zip(stored, verdict, strict=True) if not ok})
                if excluded:
                    parts.append(f"{name} not in {json.dumps(excluded)}")
            else:
                kept = sorted({s for s, ok in zip(stored, verdict, strict=True) if ok})
                parts.append(f"{name} in {json.dumps(kept)}")
    return " and ".join(parts)


# ---------------------------------------------------------------- explicit filters

def _field_error(path: str, message: str) -> dict[str, str]:
    return {"field": path, "message": message, "type": "value_error"}


def canonical_filters(filters: Constraints | None, *, location: str = "body.filters") -> Constraints | None:
    """Explicit filters in the parser's canonical form: catalog brand spellings ('samsung', 'Galaxy' → Samsung),
    colour words ('Rose-Gold' → 'rose gold'), duplicates dropped. A value that is not a known brand or colour is
    an ``InvalidInput`` naming each bad field (``body.filters.colors.0``), never a filter that matches nothing."""
    if filters is None:
        return None
    errors: list[dict[str, str]] = []
    update: dict[str, list[str]] = {}
    for name, canon, what in (("brands", vocabulary.canonical_brand, "a brand"),
                              ("brands_exclude", vocabulary.canonical_brand, "a brand"),
                              ("colors", vocabulary.canonical_color, "a colour")):
        values: list[str] = []
        for n, raw in enumerate(getattr(filters, name)):
            value = canon(raw)
            if value is None:
                errors.append(_field_error(f"{location}.{name}.{n}", f"{raw[:60]!r} is not {what} we know"))
            elif value not in values:
                values.append(value)
        update[name] = values
    if errors:
        names = ", ".join(e["field"] for e in errors)
        raise InvalidInput(f"invalid {names}: {errors[0]['message']}", fields=errors)
    return filters.model_copy(update=update)


# ---------------------------------------------------------------- relaxation

PRICE_STEPS = (0.10, 0.25)   # widen the price bounds by 10 %, then by 25 %
RAM_TIERS_GB = (0.5, 1, 2, 3, 4, 6, 8, 12, 16, 18, 24)
STORAGE_TIERS_GB = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
RATING_STEP = 0.5


def _lower_tier(value: float, tiers: Sequence[float]) -> float:
    below = [t for t in tiers if t < value]
    return below[-1] if below else 0.0


def _upper_tier(value: float, tiers: Sequence[float]) -> float:
    above = [t for t in tiers if t > value]
    return above[0] if above else value


def relaxations(c: Constraints) -> list[tuple[Constraints, list[str]]]:
    """The relaxation ladder, each step looser than the last, with the fields relaxed so far (in order):
    price bounds widened by 10 % then 25 %; then RAM and storage one tier (8 → 6 GB, 128 → 64 GB); then the
    rating floor lowered by 0.5. Brands, colours, bands, feature phone, discount and sort are never relaxed."""
    steps: list[tuple[Constraints, list[str]]] = []
    relaxed: list[str] = []
    current = c

    def step(update: dict[str, Any]) -> None:
        nonlocal current
        changed = [k for k, v in update.items() if getattr(current, k) != v]
        if not changed:
            return
        current = current.model_copy(update=update)
        relaxed.extend(k for k in changed if k not in relaxed)
        steps.append((current, list(relaxed)))

    for widen in PRICE_STEPS:
        update: dict[str, Any] = {}
        if c.price_max_inr is not None:
            update["price_max_inr"] = round(c.price_max_inr * (1 + widen))
        if c.price_min_inr is not None:
            update["price_min_inr"] = round(c.price_min_inr * (1 - widen))
        step(update)
    update = {}
    for lo, hi, tiers in (("ram_gb_min", "ram_gb_max", RAM_TIERS_GB),
                          ("storage_gb_min", "storage_gb_max", STORAGE_TIERS_GB)):
        if getattr(c, lo) is not None:
            update[lo] = _lower_tier(getattr(c, lo), tiers)
        if getattr(c, hi) is not None:
            update[hi] = _upper_tier(getattr(c, hi), tiers)
    step(update)
    if c.rating_min is not None:
        step({"rating_min": max(0.0, c.rating_min - RATING_STEP)})
    return steps

