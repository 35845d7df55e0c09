"""``pickwise-pipeline generate-catalog``: a synthetic phone catalog of any size in the Flipkart CSV layout
(same columns, same messiness in units and brand case), for scale benchmarks of BM25, Milvus and ingest."""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path
from typing import Any

BRANDS = ["SAMSUNG", "Samsung", "Apple", "realme", "OPPO", "Xiaomi", "Nokia", "vivo", "Infinix", "Motorola",
          "GIONEE", "Lenovo", "ASUS", "LG", "POCO", "HTC", "Google Pixel", "OnePlus", "Tecno", "iQOO", "Honor"]
SERIES = ["Galaxy", "Note", "Nord", "Hot", "Zenfone", "Edge", "Reno", "Narzo", "Redmi", "Spark", "Pro", "Max",
          "Lite", "Plus", "Neo", "Play", "Prime", "Ultra", "Mini", "Power", "Smart", "Turbo", "Fold", "Flip"]
COLOURS = ["Black", "Blue", "White", "Gold", "Silver", "Green", "Red", "Grey", "Purple", "Midnight Black",
           "Ocean Blue", "Mint Green", "Phantom Black", "Aurora Blue", "Pearl White", "Sunset Orange"]
CONFIGS = [(2, 32), (3, 32), (4, 64), (4, 128), (6, 128), (8, 128), (8, 256), (12, 256), (12, 512), (16, 1024)]


def _row(rng: random.Random) -> dict[str, Any]:
    brand = rng.choice(BRANDS)
    model = f"{rng.choice(SERIES)} {rng.randint(1, 99)}{rng.choice(['', '', 'A', 'S', 'i', 'T'])}"
    if rng.random() < 0.3:
        model += " " + rng.choice(SERIES)
    if rng.random() < 0.03:  # keypad phone
        ram, storage = f"{rng.choice([4, 8, 16, 32])} MB", f"{rng.choice([4, 8, 16])} MB"
        price = rng.randint(900, 4000)
    else:
        ram_gb, storage_gb = rng.choice(CONFIGS)
        ram = rng.choice([f"{ram_gb} GB RAM", f"{ram_gb}GB RAM"])
        storage = "1 TB" if storage_gb == 1024 else f"{storage_gb} GB ROM"
        price = int(rng.lognormvariate(9.8, 0.6)) // 100 * 100 + 99
    original = price if rng.random() < 0.3 else int(price * rng.uniform(1.0, 1.6))
    rating = "" if rng.random() < 0.04 else f"{rng.uniform(3.2, 4.9):.1f}"
    return {"Brand": brand, "Model": model, "Color": rng.choice(COLOURS), "Memory": ram, "Storage": storage,
            "Rating": rating, "Selling Price": price, "Original Price": original}


def generate(n: int, path: Path, seed: int = 7) -> Path:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["Brand", "Model", "Color", "Memory", "Storage", "Rating",
                                                "Selling Price", "Original Price"])
        writer.writeheader()
        for _ in range(n):
            writer.writerow(_row(rng))
    return path


def run(args: argparse.Namespace) -> int:
    path = generate(args.n, Path(args.out), args.seed)
    print(f"wrote {args.n} rows to {path}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("generate-catalog", help="synthetic catalog (Flipkart CSV layout) for scale tests")
    parser.add_argument("--n", type=int, default=100_000, help="rows")
    parser.add_argument("--out", default=".pickwise/synthetic/catalog_100k.csv", help="CSV to write")
    parser.add_argument("--seed", type=int, default=7)
    parser.set_defaults(func=run)
