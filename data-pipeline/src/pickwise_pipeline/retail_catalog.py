"""The retail catalog (UCI Online Retail invoice lines, data/retail/README.md) as items: one item per stock code.

Invoice lines are not catalog rows, so this mapping aggregates (decision 0802): codes that differ only by
letter case are one item, ``or-<StockCode upper-cased>``; its title is the most frequent description on its
sale lines (first seen wins a tie), its price the median unit price of those lines (GBP), its category a
keyword of the title (``CATEGORY_KEYWORDS``, else ``other``). A sale line is a line that is not a cancellation
(``C…`` invoice), with quantity > 0 and unit price > 0; exact duplicate lines count once. Codes that are not
products (``retail_codes.is_product_code``, the rule the history import shares) are not items, nor are codes
that never had a sale line. A line that cannot be read (wrong field count, a quantity or price that is not a
number, no code) is counted and skipped.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pickwise_common.catalogs import CATALOGS
from pickwise_common.schemas import Item
from pickwise_pipeline.retail_codes import is_product_code, retail_item_id

CATALOG = "retail"
SPEC = CATALOGS[CATALOG]
COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
           "Country")
# (category, words of a title that put an item in it), first match wins; a word matches its plural too
CATEGORY_KEYWORDS: tuple[tuple[str, frozenset[str]], ...] = tuple((name, frozenset(words.split())) for name, words in (
    ("christmas", "CHRISTMAS XMAS ADVENT SANTA REINDEER SNOWFLAKE NATIVITY"),
    ("candles and lights", "CANDLE T-LIGHT TEALIGHT LANTERN LIGHT LAMP NIGHTLIGHT CANDLEHOLDER"),
    ("bags", "BAG TOTE SHOPPER PURSE"),
    ("mugs and cups", "MUG CUP TEACUP SAUCER BEAKER"),
    ("kitchen and tableware", "CAKE BAKING CAKESTAND TEAPOT APRON JAR BOWL PLATE CUTLERY SPOON LUNCH BOTTLE TIN "
                              "KITCHEN RECIPE NAPKIN TRAY COASTER GLASS STRAW PANTRY TEA DISH JUG OVEN"),
    ("stationery and wrap", "CARD PEN PENCIL NOTEBOOK WRAP PAPER STICKER ENVELOPE CALENDAR DIARY TAPE RIBBON "
                            "NOTE BOOK CRAYON ERASER STAMP CONFETTI"),
    ("toys and party", "TOY GAME PUZZLE DOLL DOLLY SKIPPING PARTY BALLOON PLAYHOUSE SPACEBOY JIGSAW SOLDIER "
                       "BUNNY TEDDY"),
    ("jewellery and accessories", "NECKLACE BRACELET EARRING RING HAIR CLIP SLIDE BROOCH CHARM UMBRELLA WALLET "
                                  "KEYRING BANGLE HAIRCLIP SCARF GLOVE"),
    ("garden", "GARDEN PLANT WATERING BIRD PLANTER FLOWER SEED TRELLIS"),
    ("storage", "BOX BASKET HOLDER DRAWER CABINET HOOK STORAGE CRATE RACK HANGER PEG"),
    ("home decor", "HEART SIGN DECORATION HANGING GARLAND BUNTING FRAME CLOCK ORNAMENT WREATH DOORMAT CUSHION "
                   "COVER VASE MIRROR CHIME PLAQUE DOORSTOP BLOCK"),
    ("bath and beauty", "SOAP BATH TOWEL SPONGE COSMETIC MAKE-UP"),
))
OTHER_CATEGORY = "other"

_WORD = re.compile(r"[A-Z][A-Z'-]*")


def category_of(title: str) -> str:
    words = {w.rstrip("S") if len(w) > 3 else w for w in _WORD.findall(title.upper())} | \
        set(_WORD.findall(title.upper()))
    for name, keywords in CATEGORY_KEYWORDS:
        if words & keywords:
            return name
    return OTHER_CATEGORY


@dataclass
class _Code:
    """What the sale lines of one (case-folded) stock code say."""

    descriptions: Counter[str] = field(default_factory=Counter)
    prices: list[float] = field(default_factory=list)
    quantity: int = 0
    invoices: set[str] = field(default_factory=set)
    customers: set[str] = field(default_factory=set)
    spellings: set[str] = field(default_factory=set)
    first_seen: str = ""
    last_seen: str = ""


@dataclass
class RetailCatalog:
    items: list[Item] = field(default_factory=list)
    rows_read: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    duplicate_rows: int = 0
    excluded_codes: Counter[str] = field(default_factory=Counter)     # non-product code → lines
    skipped_lines: Counter[str] = field(default_factory=Counter)      # reason → lines not used for an item
    codes_without_sale: list[str] = field(default_factory=list)
    case_variants_merged: int = 0

    def report(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "items": len(self.items),
                "rows_rejected": sum(self.malformed.values()), "rejected_by_reason": dict(self.malformed),
                "duplicates": self.duplicate_rows,
                "excluded_codes": len(self.excluded_codes), "excluded_code_lines": sum(self.excluded_codes.values()),
                "excluded_by_code": dict(self.excluded_codes.most_common()),
                "skipped_lines": dict(self.skipped_lines),
                "codes_without_sale": len(self.codes_without_sale),
                "codes_without_sale_examples": self.codes_without_sale[:20],
                "case_variants_merged": self.case_variants_merged,
                "categories": dict(Counter(i.category for i in self.items).most_common()),
                "groups": len(self.items)}


def read_lines(path: Path) -> Iterator[list[str]]:
    """The CSV's data lines as lists of cells (gzip or plain), header checked and skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise ValueError(f"{path}: expected the columns {', '.join(COLUMNS)}, got {header}")
        yield from reader


def aggregate(lines: Iterable[list[str]]) -> RetailCatalog:
    """Invoice lines (cells in ``COLUMNS`` order) → one item per product code, with counts of what was left out."""
    out = RetailCatalog()
    codes: dict[str, _Code] = {}
    seen_rows: set[bytes] = set()
    product_codes: set[str] = set()
    for cells in lines:
        out.rows_read += 1
        if len(cells) != len(COLUMNS):
            out.malformed["wrong field count"] += 1
            continue
        invoice, code, description, quantity_text, date, price_text, customer, _country = cells
        code = code.strip()
        if not code:
            out.malformed["missing stock code"] += 1
            continue
        try:
            quantity = int(quantity_text)
            price = float(price_text)
        except ValueError:
            out.malformed["non-numeric quantity or price"] += 1
            continue
        digest = hashlib.blake2b("\x1f".join(cells).encode(), digest_size=12).digest()
        if digest in seen_rows:
            out.duplicate_rows += 1
            continue
        seen_rows.add(digest)
        if not is_product_code(code):
            out.excluded_codes[code.upper()] += 1
            continue
        product_codes.add(code.upper())
        if invoice.startswith("C"):
            out.skipped_lines["cancellation"] += 1
            continue
        if quantity <= 0:
            out.skipped_lines["quantity not positive"] += 1
            continue
        if price <= 0:
            out.skipped_lines["price not positive"] += 1
            continue
        key = code.upper()
        stats = codes.get(key)
        if stats is None:
            stats = codes[key] = _Code(first_seen=date)
        text = " ".join(description.split())
        if text:
            stats.descriptions[text] += 1
        stats.prices.append(price)
        stats.quantity += quantity
        stats.invoices.add(invoice)
        if customer.strip():
            stats.customers.add(customer.strip())
        stats.spellings.add(code)
        stats.last_seen = date
    for key in sorted(codes):
        stats = codes[key]
        if stats.descriptions:  # a code sold only under an empty description has no title: not an item
            out.case_variants_merged += len(stats.spellings) - 1
            out.items.append(_item(key, stats))
    out.codes_without_sale = sorted(product_codes - {i.attrs["stock_code"] for i in out.items})
    return out


def _item(key: str, stats: _Code) -> Item:
    title = stats.descriptions.most_common(1)[0][0]
    return Item(item_id=retail_item_id(key), catalog=CATALOG, title=title, category=category_of(title),
                price=round(statistics.median(stats.prices), 2), currency=SPEC.currency,
                attrs={"stock_code": key, "spellings": sorted(stats.spellings), "lines": len(stats.prices),
                       "invoices": len(stats.invoices), "customers": len(stats.customers),
                       "quantity": stats.quantity, "descriptions": len(stats.descriptions),
                       "first_seen": stats.first_seen, "last_seen": stats.last_seen})


def load(path: Path) -> RetailCatalog:
    return aggregate(read_lines(path))
