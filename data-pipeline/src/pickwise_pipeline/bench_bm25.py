"""``pickwise-pipeline bench-bm25``: rank-bm25 against bm25s on the catalog and on a synthetic one —
index build time, per-query scoring latency over all documents, and top-10 agreement."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from pickwise_common.bm25 import Bm25sIndex, RankBm25Index, item_text, tokenize
from pickwise_pipeline.catalog import FLIPKART, normalise, read_rows
from pickwise_pipeline.generate_catalog import generate
from pickwise_pipeline.settings import PipelineSettings

QUERIES = ["samsung galaxy", "nokia 2.4", "redmi note 10 pro", "iphone 12 pro max", "infinix hot 10", "oppo a53",
           "realme c11 2021", "asus rog phone 3", "vivo y20", "moto g", "black phone", "keypad feature phone",
           "8 gb ram", "128 gb storage", "pixel 3a xl", "galaxy m31 blue", "poco x3", "oneplus nord", "lenovo k8",
           "budget smartphone"]


def _pct(values: list[float], p: float) -> float:
    return round(float(np.percentile(values, p)), 3)


def bench(name: str, docs: list[list[str]], rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"documents": len(docs)}
    tops: dict[str, list[list[int]]] = {}
    for label, cls in (("rank_bm25", RankBm25Index), ("bm25s", Bm25sIndex)):
        t = time.perf_counter()
        index = cls.build(docs)
        build_s = time.perf_counter() - t
        latencies = []
        top: list[list[int]] = []
        for r in range(rounds):
            for q in QUERIES:
                t = time.perf_counter()
                scores = index.scores(tokenize(q))
                latencies.append((time.perf_counter() - t) * 1000)
                if r == 0:
                    top.append(np.argsort(-scores, kind="stable")[:10].tolist())
        tops[label] = top
        out[label] = {"build_s": round(build_s, 3), "query_p50_ms": _pct(latencies, 50),
                      "query_p99_ms": _pct(latencies, 99), "query_mean_ms": round(statistics.mean(latencies), 3)}
    overlap = [len(set(a) & set(b)) / 10 for a, b in zip(tops["rank_bm25"], tops["bm25s"], strict=True)]
    out["top10_overlap"] = round(statistics.mean(overlap), 3)
    print(f"{name}: {json.dumps(out)}", flush=True)
    return out


def run(args: argparse.Namespace) -> int:
    settings = PipelineSettings()
    results = {}
    items = normalise(read_rows(settings.resolved_catalog_path()), FLIPKART).items
    results["catalog"] = bench("catalog", [tokenize(item_text(i)) for i in items], args.rounds)
    synthetic = Path(args.synthetic)
    if not synthetic.is_file():
        generate(args.n, synthetic)
    items = normalise(read_rows(synthetic), FLIPKART).items
    results["synthetic"] = bench(f"synthetic {len(items)}", [tokenize(item_text(i)) for i in items],
                                 max(1, args.rounds // 5))
    print(json.dumps(results))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench-bm25", help="rank-bm25 vs bm25s: build time, query latency, agreement")
    parser.add_argument("--rounds", type=int, default=10, help="passes over the query list (catalog)")
    parser.add_argument("--n", type=int, default=100_000, help="rows of the synthetic catalog")
    parser.add_argument("--synthetic", default=".pickwise/synthetic/catalog_100k.csv")
    parser.set_defaults(func=run)
