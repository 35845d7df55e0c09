"""``pickwise-pipeline bench-retriever``: latency of the RUNNING retriever's POST /v1/retrieve.

Queries: the dev set's plus generated phrasings (brands × price phrasings × memory), shuffled, so most
are distinct and the query-embedding cache is measured honestly: the first pass is reported as ``cold``
(every query new to the service's cache), later passes as ``warm``. Both the client round trip and the
service's own ``timings_ms.total`` are reported, p50/p95/p99.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from pickwise_common.settings import default_data_root

BRANDS = ["Samsung", "Xiaomi", "Redmi", "Vivo", "OPPO", "Realme", "Nokia", "Apple iPhone", "Motorola", "Infinix",
          "Poco", "OnePlus", "Google Pixel", "Asus", "Lenovo", "Gionee"]
PRICES = ["under {k}k", "below ₹{k},000", "less than {k}000 rupees", "within a {k}K budget", "{k}-{k2}k",
          "above {k}k", "between {k}000 and {k2}000", "around {k} thousand"]
EXTRAS = ["", "with 8gb ram", "4/64", "128GB storage", "best rated", "cheapest", "5g", "black", "with big discount"]


def make_queries(dev: Path | None, n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    queries: list[str] = []
    if dev and dev.is_file():
        queries += [json.loads(line)["query"] for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    seen = set(queries)
    while len(queries) < n:
        k = rng.choice([6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 70])
        q = " ".join(p for p in (rng.choice(BRANDS), rng.choice(["phone", "mobile", ""]),
                                 rng.choice(PRICES).format(k=k, k2=k + rng.choice([5, 10])), rng.choice(EXTRAS)) if p)
        if q not in seen:
            seen.add(q)
            queries.append(q)
    rng.shuffle(queries)
    return queries[:n]


def _summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(float(np.percentile(values, 50)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "p99_ms": round(float(np.percentile(values, 99)), 2), "mean_ms": round(float(np.mean(values)), 2)}


def run(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("PICKWISE_RETRIEVER_URL", "http://127.0.0.1:8001")
    queries = make_queries(Path(args.queries) if args.queries else None, args.n)
    results: dict[str, Any] = {"url": url, "mode": args.mode, "k": args.k, "queries": len(queries)}
    with httpx.Client(base_url=url, timeout=30) as client:
        for q in queries[:5]:  # connection set-up, nothing measured
            client.post("/v1/retrieve", json={"query": "warm-up " + q, "mode": args.mode, "k": args.k})
        for label, passes in (("cold", 1), ("warm", args.warm_passes)):
            client_ms: list[float] = []
            server_ms: list[float] = []
            for _ in range(passes):
                for q in queries:
                    t = time.perf_counter()
                    response = client.post("/v1/retrieve", json={"query": q, "mode": args.mode, "k": args.k})
                    client_ms.append((time.perf_counter() - t) * 1000)
                    response.raise_for_status()
                    server_ms.append(float(response.json()["timings_ms"].get("total", 0.0)))
            if passes:
                results[label] = {"client": _summary(client_ms), "server": _summary(server_ms)}
                print(f"{label:5s} client {results[label]['client']}  server {results[label]['server']}", flush=True)
    print(json.dumps(results))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench-retriever", help="latency of the running retriever's /v1/retrieve")
    parser.add_argument("--url", help="retriever base URL (default PICKWISE_RETRIEVER_URL)")
    parser.add_argument("--queries", default=str(default_data_root() / "eval" / "flipkart_dev.jsonl"))
    parser.add_argument("--n", type=int, default=300, help="distinct queries")
    parser.add_argument("--mode", default="hybrid", choices=("bm25", "dense", "hybrid"))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--warm-passes", type=int, default=1, help="passes after the cold one")
    parser.set_defaults(func=run)
