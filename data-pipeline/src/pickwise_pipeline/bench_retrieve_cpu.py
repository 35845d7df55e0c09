"""``pickwise-pipeline bench-retrieve-cpu``: CPU-ms per uncached ``POST /v1/retrieve`` of the running retriever
and of the local Milvus Lite server (psutil deltas of the processes listening on their ports), sequential,
distinct queries. Start the retriever with ``PICKWISE_QUERY_CACHE_SIZE=0`` so every query is encoded."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx
import numpy as np

from pickwise_common.settings import DownstreamSettings
from pickwise_pipeline.bench_encoder import DEFAULT_QUERIES, load_queries
from pickwise_pipeline.bench_vectors import server_process
from pickwise_pipeline.settings import PipelineSettings


def _cpu_s(proc: Any) -> float:
    return 0.0 if proc is None else float(sum(proc.cpu_times()[:2]))


def run(args: argparse.Namespace) -> int:
    settings = PipelineSettings()
    url = args.url or DownstreamSettings().retriever_url
    retriever, milvus = server_process(url), server_process(settings.milvus_uri)
    if retriever is None:
        raise SystemExit(f"no local process listens on {url}")
    queries = load_queries(args.queries)
    with httpx.Client(base_url=url, timeout=30) as client:
        def send(query: str) -> None:
            client.post("/v1/retrieve", json={"query": query, "mode": args.mode}).raise_for_status()

        for query in queries[:10]:
            send(query)
        latencies = []
        r0, m0 = _cpu_s(retriever), _cpu_s(milvus)
        for _ in range(args.rounds):
            for query in queries:
                t = time.perf_counter()
                send(query)
                latencies.append((time.perf_counter() - t) * 1000)
    n = len(latencies)
    print(json.dumps({"requests": n, "mode": args.mode,
                      "retriever_cpu_ms": round((_cpu_s(retriever) - r0) * 1000 / n, 1),
                      "milvus_cpu_ms": round((_cpu_s(milvus) - m0) * 1000 / n, 1) if milvus else None,
                      "p50_ms": round(float(np.percentile(latencies, 50)), 1),
                      "p99_ms": round(float(np.percentile(latencies, 99)), 1)}))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench-retrieve-cpu", help="CPU-ms per uncached retrieve: retriever + Milvus Lite")
    parser.add_argument("--url", help="retriever base URL (default PICKWISE_RETRIEVER_URL)")
    parser.add_argument("--queries", nargs="+", default=list(DEFAULT_QUERIES), help="JSONL files with a query field")
    parser.add_argument("--mode", default="hybrid", choices=("bm25", "dense", "hybrid"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.set_defaults(func=run)
