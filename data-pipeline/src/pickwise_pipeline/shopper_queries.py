"""A deterministic stream of distinct, realistic shopper queries for the benchmarks, built from the catalog's own
vocabulary (brands, models, colours, RAM and storage sizes, its price range) with the noise shoppers add
(price spellings, a typo, case, chatty wrappers; see ``noisy_queries``). No query repeats, so a benchmark
that sends them in order sees the gateway's retrieval cache and the encoder's LRU as cold as a real
population of shoppers would.

    pickwise-pipeline shopper-queries --count 5000 --seed 7 --out .pickwise/reports/shopper-queries.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pickwise_pipeline.noisy_queries import ENDINGS, OPENINGS, _amount_spelling, longest_word_typo, random_case

DEFAULT_CATALOG = Path("data/flipkart_mobiles.csv")
DEFAULT_COUNT = 5000
DEFAULT_SEED = 7
MAX_QUERY_CHARS = 500  # the gateway's bound on ``q``
USES = ("gaming", "camera", "battery", "selfies", "students", "my dad", "office", "photography", "5g", "music")
QUALITIES = ("best", "cheap", "budget", "good", "latest", "top rated", "value for money", "premium", "new")
SORTS = ("cheapest", "highest rated", "best rated", "lowest price", "most popular")


@dataclass(frozen=True)
class Vocabulary:
    """What the catalog sells, as shoppers would name it."""

    brands: tuple[str, ...]
    models: tuple[tuple[str, str], ...]  # (brand, model)
    colours: tuple[str, ...]
    ram_gb: tuple[int, ...]
    storage_gb: tuple[int, ...]
    prices_inr: tuple[int, ...]  # selling prices, one per catalog row (so budgets follow the catalog's spread)


def _gb(text: str) -> int | None:
    match = re.fullmatch(r"\s*(\d+)\s*(GB|TB)\b.*", text, flags=re.I)
    if not match:
        return None
    return int(match.group(1)) * (1024 if match.group(2).upper() == "TB" else 1)


def vocabulary(catalog_csv: Path) -> Vocabulary:
    """The vocabulary of a Flipkart-style CSV (Brand, Model, Color, Memory, Storage, Selling Price)."""
    brands: set[str] = set()
    models: set[tuple[str, str]] = set()
    colours: set[str] = set()
    ram: set[int] = set()
    storage: set[int] = set()
    prices: list[int] = []
    with catalog_csv.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            brand = row["Brand"].strip()
            brands.add(brand.lower())
            models.add((brand.lower(), row["Model"].strip()))
            if row.get("Color", "").strip() and row["Color"].strip().lower() != "nan":
                colours.add(row["Color"].strip().lower())
            for value, into in ((_gb(row.get("Memory", "")), ram), (_gb(row.get("Storage", "")), storage)):
                if value:
                    into.add(value)
            if row.get("Selling Price", "").strip().isdigit():
                prices.append(int(row["Selling Price"]))
    if not models:
        raise ValueError(f"{catalog_csv} has no rows with Brand and Model")
    return Vocabulary(tuple(sorted(brands)), tuple(sorted(models)), tuple(sorted(colours)),
                      tuple(sorted(ram)), tuple(sorted(storage)), tuple(sorted(prices)) or (15_000,))


def _price(vocab: Vocabulary, rng: random.Random) -> int:
    """A round budget a shopper would type: a catalog price rounded up to a step of 500, 1,000 or 5,000."""
    step = rng.choice((500, 1000, 1000, 5000))
    return -(-rng.choice(vocab.prices_inr) // step) * step


def _price_text(vocab: Vocabulary, rng: random.Random) -> str:
    return _amount_spelling(str(_price(vocab, rng)), rng)


def _size(value_gb: int, rng: random.Random) -> str:
    if value_gb >= 1024 and value_gb % 1024 == 0:
        return rng.choice((f"{value_gb // 1024}tb", f"{value_gb // 1024} TB"))
    return rng.choice((f"{value_gb}gb", f"{value_gb} gb", f"{value_gb}GB", f"{value_gb} GB"))


def _budget(vocab: Vocabulary, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        return f"{rng.choice(('under', 'below', 'less than', 'within', 'upto', 'max'))} {_price_text(vocab, rng)}"
    if kind < 0.8:
        low = _price(vocab, rng)
        high = low + rng.choice((2000, 5000, 10_000, 15_000))
        return (f"{rng.choice(('between', 'from'))} {_amount_spelling(str(low), rng)} "
                f"{rng.choice(('and', 'to'))} {_amount_spelling(str(high), rng)}")
    return f"{rng.choice(('above', 'over', 'more than'))} {_price_text(vocab, rng)}"


def _brand_model(vocab: Vocabulary, rng: random.Random) -> str:
    brand, model = rng.choice(vocab.models)
    return f"{brand} {model}" if rng.random() < 0.8 else model


Template = Callable[[Vocabulary, random.Random], str]
TEMPLATES: tuple[Template, ...] = (
    lambda v, r: _brand_model(v, r),
    lambda v, r: f"{_brand_model(v, r)} {_size(r.choice(v.storage_gb), r)}",
    lambda v, r: f"{_brand_model(v, r)} {r.choice(v.colours)}",
    lambda v, r: f"{r.choice(v.colours)} {r.choice(v.brands)} phone",
    lambda v, r: f"{r.choice(v.brands)} phone {_budget(v, r)}",
    lambda v, r: f"{r.choice(QUALITIES)} {r.choice(v.brands)} mobile {_budget(v, r)}",
    lambda v, r: f"phone with {_size(r.choice(v.ram_gb), r)} ram {_budget(v, r)}",
    lambda v, r: f"{r.choice(v.brands)} {_size(r.choice(v.ram_gb), r)} ram {_size(r.choice(v.storage_gb), r)}",
    lambda v, r: f"{r.choice(v.brands)} with {_size(r.choice(v.storage_gb), r)} storage",
    lambda v, r: f"{r.choice(QUALITIES)} phone for {r.choice(USES)} {_budget(v, r)}",
    lambda v, r: f"{r.choice(v.brands)} phone {r.choice(('4', '4.2', '4.3', '4.5'))} "
                 f"{r.choice(('rating and above', 'stars or more', '+ rating', 'star rated'))}",
    lambda v, r: f"{r.choice(SORTS)} {r.choice(v.brands)} {_size(r.choice(v.ram_gb), r)} ram",
    lambda v, r: f"{r.choice(v.colours)} phone {_budget(v, r)}",
    lambda v, r: f"{_brand_model(v, r)} {_size(r.choice(v.ram_gb), r)} {_size(r.choice(v.storage_gb), r)} "
                 f"{r.choice(v.colours)}",
    lambda v, r: f"{r.choice(QUALITIES)} {r.choice(USES)} phone {r.choice(v.brands)}",
)


def shopper_query(vocab: Vocabulary, rng: random.Random) -> str:
    """One query: a template filled from the vocabulary, then a typo (1 in 5), case and a chatty wrapper
    (1 in 4) the way shoppers type."""
    text = rng.choice(TEMPLATES)(vocab, rng)
    if rng.random() < 0.2:
        text = longest_word_typo(text, rng)
    text = random_case(text, rng) if rng.random() < 0.3 else text.lower()
    if rng.random() < 0.25:
        text = f"{rng.choice(OPENINGS)}{text}{rng.choice(ENDINGS)}"
    return " ".join(text.split())[:MAX_QUERY_CHARS]


def shopper_queries(count: int = DEFAULT_COUNT, *, seed: int = DEFAULT_SEED,
                    catalog_csv: Path = DEFAULT_CATALOG) -> list[str]:
    """``count`` distinct queries, the same list for the same seed and catalog."""
    vocab = vocabulary(catalog_csv)
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    attempts = 0
    while len(seen) < count:
        attempts += 1
        if attempts > count * 50:
            raise ValueError(f"the vocabulary of {catalog_csv} yields fewer than {count} distinct queries")
        seen.setdefault(shopper_query(vocab, rng), None)
    return list(seen)


def run(args: argparse.Namespace) -> int:
    queries = shopper_queries(args.count, seed=args.seed, catalog_csv=Path(args.catalog))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({"query": q}, ensure_ascii=False) + "\n" for q in queries), encoding="utf-8")
    print(f"{len(queries)} distinct shopper queries (seed {args.seed}) → {out}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("shopper-queries", help="distinct realistic shopper queries for the bench (JSONL)")
    parser.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", default=".pickwise/reports/shopper-queries.jsonl")
    parser.set_defaults(func=run)
