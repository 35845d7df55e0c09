"""Catalog normalisation: raw CSV/JSONL rows → ``schemas.Item`` values, with a report of what was rejected.

A catalog is read through a small column mapping (``ColumnMapping``), so another catalog only needs a
mapping (a JSON file passed with ``--mapping``), not code. Item ids are ``<prefix>-`` + the 1-based data-row
number, zero-padded to 5 digits (``fm-00001`` is the first data row).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pickwise_common.bm25 import TEXT_VERSION, item_text
from pickwise_common.schemas import Item
from pickwise_pipeline import cleaning

# Lower-cased raw brand (or alias) → canonical brand.
BRAND_ALIASES: dict[str, str] = {
    "samsung": "Samsung", "apple": "Apple", "realme": "Realme", "oppo": "OPPO", "xiaomi": "Xiaomi",
    "mi": "Xiaomi", "redmi": "Xiaomi", "nokia": "Nokia", "vivo": "Vivo", "infinix": "Infinix",
    "motorola": "Motorola", "moto": "Motorola", "gionee": "Gionee", "lenovo": "Lenovo", "asus": "Asus",
    "lg": "LG", "poco": "POCO", "htc": "HTC", "google": "Google", "google pixel": "Google",
    "oneplus": "OnePlus", "one plus": "OnePlus", "tecno": "Tecno", "iqoo": "iQOO", "honor": "Honor",
    "lava": "Lava", "micromax": "Micromax", "nothing": "Nothing", "sony": "Sony",
}

PRICE_BANDS = (("budget", 0.0), ("mid", 15_000.0), ("premium", 30_000.0), ("flagship", 70_000.0))


def price_band(price_inr: float) -> str:
    """budget < 15k ≤ mid < 30k ≤ premium < 70k ≤ flagship."""
    band = "budget"
    for name, floor in PRICE_BANDS:
        if price_inr >= floor:
            band = name
    return band


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column holds which field (missing optional columns are allowed)."""

    catalog: str = "flipkart"
    id_prefix: str = "fm"
    category: str = "mobile"
    brand: str = "Brand"
    model: str = "Model"
    color: str | None = "Color"
    ram: str | None = "Memory"
    storage: str | None = "Storage"
    rating: str | None = "Rating"
    price: str = "Selling Price"
    original_price: str | None = "Original Price"
    id_column: str | None = None

    @classmethod
    def from_file(cls, path: Path) -> ColumnMapping:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


FLIPKART = ColumnMapping()


_MISSING = {"", "nan", "none", "null", "na", "n/a", "-"}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(tb|gb|mb|kb)\b", re.I)
_UNIT_GB = {"tb": 1024.0, "gb": 1.0, "mb": 1 / 1024, "kb": 1 / (1024 * 1024)}


def clean(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    text = " ".join(str(value).split())
    return None if text.lower() in _MISSING else text


def parse_size_gb(value: Any) -> tuple[float | None, bool]:
    """'4 GB RAM' → 4.0, '512 MB' → 0.5, '1 TB' → 1024.0; the flag tells 'Expandable Upto …' (a card
    slot, not built-in storage)."""
    text = clean(value)
    if text is None:
        return None, False
    match = _SIZE.search(text)
    if not match:
        return None, False
    gb = float(match.group(1)) * _UNIT_GB[match.group(2).lower()]
    return round(gb, 4), "expandable" in text.lower()


def parse_number(value: Any) -> float | None:
    text = clean(value)
    if text is None:
        return None
    text = re.sub(r"[₹,\s]|rs\.?|inr", "", text, flags=re.I)
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def canonical_brand(raw: str) -> str:
    key = raw.strip().lower()
    return BRAND_ALIASES.get(key) or raw.strip()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _fmt_gb(value: float) -> str:
    if value < 1:
        return f"{round(value * 1024)} MB"
    return f"{value:g} GB" if value < 1024 else f"{value / 1024:g} TB"


@dataclass
class Normalised:
    items: list[Item] = field(default_factory=list)
    rows_read: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    fixes: Counter[str] = field(default_factory=Counter)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        reasons = Counter(r["reason"] for r in self.rejected)
        return {"rows_read": self.rows_read, "items": len(self.items), "rows_rejected": len(self.rejected),
                "rejected_by_reason": dict(reasons), "rejected": self.rejected[:50],
                "rows_repaired": len(self.repaired),
                "repaired_by_rule": dict(Counter(r["rule"] for r in self.repaired)), "repaired": self.repaired,
                "rows_quarantined": len(self.quarantined), "quarantined": self.quarantined,
                "duplicates": len(self.duplicates), "duplicate_examples": self.duplicates[:10],
                "fixes": dict(self.fixes), "groups": len({i.group_id for i in self.items})}


def normalise_row(row: dict[str, Any], row_no: int, mapping: ColumnMapping,
                  fixes: Counter[str] | None = None) -> Item:
    """One raw row → Item; raises ValueError(reason) when the row cannot be used."""
    fixes = fixes if fixes is not None else Counter()
    brand_raw = clean(row.get(mapping.brand))
    model_raw = clean(row.get(mapping.model))
    if brand_raw is None:
        raise ValueError("missing brand")
    if model_raw is None:
        raise ValueError("missing model")
    price = parse_number(row.get(mapping.price))
    if price is None:
        raise ValueError("missing or non-numeric price")
    if price <= 0:
        raise ValueError("price not positive")
    brand = canonical_brand(brand_raw)
    if brand != brand_raw:
        fixes["brand_alias"] += 1
    model = model_raw
    if brand_raw.lower() == "google pixel" and not model.lower().startswith(("pixel", "nexus")):
        model = f"Pixel {model}"
    color = clean(row.get(mapping.color)) if mapping.color else None
    ram_gb, _ = parse_size_gb(row.get(mapping.ram)) if mapping.ram else (None, False)
    storage_gb, expandable = parse_size_gb(row.get(mapping.storage)) if mapping.storage else (None, False)
    attrs: dict[str, Any] = {"row": row_no}
    if expandable:
        attrs["expandable_storage_gb"] = storage_gb
        storage_gb = None
        fixes["expandable_storage_not_builtin"] += 1
    original = parse_number(row.get(mapping.original_price)) if mapping.original_price else None
    if original is not None and original < price:
        fixes["original_price_below_price"] += 1
        original = price
    discount = round((original - price) / original * 100, 2) if original else None
    rating = parse_number(row.get(mapping.rating)) if mapping.rating else None
    if rating is not None and not 0 <= rating <= 5:
        fixes["rating_out_of_range_dropped"] += 1
        attrs["rating_raw"] = rating  # the cleaning rules say why (cleaning.rating_holds_price)
        rating = None
    if rating is None:
        fixes["rating_missing"] += 1
    derived = sized(brand, model, color, ram_gb, storage_gb)
    attrs["feature_phone"] = derived.pop("feature_phone")
    item_id = clean(row.get(mapping.id_column)) if mapping.id_column else None
    return Item(item_id=item_id or f"{mapping.id_prefix}-{row_no:05d}", catalog=mapping.catalog, brand=brand,
                model=model, color=color, category=mapping.category, price_inr=price, original_price_inr=original,
                discount_pct=discount, rating=rating, price_band=price_band(price),  # type: ignore[arg-type]
                attrs=attrs, **derived)


def sized(brand: str, model: str, color: str | None, ram_gb: float | None, storage_gb: float | None) -> dict[str, Any]:
    """The fields that follow from RAM and storage: the sizes, title, variant group and feature-phone flag."""
    # No RAM in GB (feature phones list RAM in MB or not at all) and no built-in GB storage: a keypad phone.
    feature_phone = (ram_gb is not None and ram_gb < 1 and (storage_gb is None or storage_gb < 4)) or \
        (ram_gb is None and (storage_gb is None or storage_gb < 1))
    spec = ", ".join(p for p in (color, f"{_fmt_gb(ram_gb)} RAM" if ram_gb else None,
                                 _fmt_gb(storage_gb) if storage_gb else None) if p)
    return {"ram_gb": ram_gb, "storage_gb": storage_gb, "title": f"{brand} {model}" + (f" ({spec})" if spec else ""),
            "group_id": "g-" + slug(f"{brand} {model} {ram_gb or 'na'} {storage_gb or 'na'}"),
            "feature_phone": feature_phone}


def rebuild(item: Item, change: dict[str, Any]) -> Item:
    """The item with ``change`` applied; a change of RAM or storage re-derives title, group and flag."""
    fields = item.model_dump()
    fields.update(change)
    fields.update(sized(item.brand, item.model, item.color, fields["ram_gb"], fields["storage_gb"]))
    fields["attrs"] = {**item.attrs, "feature_phone": fields.pop("feature_phone")}
    return Item(**fields)


def read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def normalise(rows: list[dict[str, Any]], mapping: ColumnMapping = FLIPKART) -> Normalised:
    out = Normalised(rows_read=len(rows))
    first_seen: dict[str, str] = {}
    for row_no, row in enumerate(rows, start=1):
        try:
            item = normalise_row(row, row_no, mapping, out.fixes)
        except ValueError as exc:
            out.rejected.append({"row": row_no, "reason": str(exc)})
            continue
        key = json.dumps(row, sort_keys=True, default=str)
        if key in first_seen:
            # Exact duplicate rows keep their own id (judgments may name either); they share a group.
            item.attrs["duplicate_of"] = first_seen[key]
            out.duplicates.append({"item_id": item.item_id, "duplicate_of": first_seen[key]})
        else:
            first_seen[key] = item.item_id
        out.items.append(item)
    cleaned = cleaning.clean(out.items, rebuild)
    out.items, out.repaired, out.quarantined = cleaned.items, cleaned.repaired, cleaned.quarantined
    return out


def search_text(item: Item) -> str:
    """The text indexed for BM25 and embedded for dense search."""
    return item_text(item)


def file_fingerprint(path: Path, mapping: ColumnMapping | dict[str, Any]) -> str:
    """What a load depends on: the file's bytes, the mapping (a ``ColumnMapping`` or a description of another
    loader), the indexed text's and the cleaning rules' versions."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    described = mapping if isinstance(mapping, dict) else mapping.__dict__
    digest.update(json.dumps(described, sort_keys=True).encode())
    digest.update(f"text-v{TEXT_VERSION}".encode())  # tokenizer / indexed text changes re-index
    digest.update(f"cleaning-v{cleaning.CLEANING_VERSION}".encode())  # new repair/quarantine rules re-load
    return digest.hexdigest()
