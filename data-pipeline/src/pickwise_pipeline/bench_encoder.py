"""``pickwise-pipeline bench-encoder``: per-query encode latency and CPU of the query encoder backends
(torch, ONNX fp32, ONNX int8) at batch 1, one intra-op thread and the library default, and their cosine
agreement with torch on the dev-set queries. The LRU query cache is bypassed: every encode is a miss."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from pickwise_common.embeddings import Embedder
from pickwise_pipeline.settings import PipelineSettings

DEFAULT_QUERIES = ("data/eval/flipkart_dev.jsonl", "data/eval/flipkart_dev_noisy.jsonl")


def load_queries(paths: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                seen.setdefault(json.loads(line)["query"].strip().lower(), None)
    return list(seen)


def measure(embedder: Embedder, queries: list[str], rounds: int) -> tuple[dict[str, float], np.ndarray]:
    """Latency (wall) and CPU (this process, all threads) per single-query encode, in ms."""
    vectors = np.vstack([embedder._encode([q]) for q in queries[:8]])  # warm up: export, load, first runs
    latencies, cpus = [], []
    for _ in range(rounds):
        for q in queries:
            wall, cpu = time.perf_counter(), time.process_time()
            embedder._encode([q])
            cpus.append((time.process_time() - cpu) * 1000)
            latencies.append((time.perf_counter() - wall) * 1000)
    vectors = np.vstack([embedder._encode([q]) for q in queries])
    return {"p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p99_ms": round(float(np.percentile(latencies, 99)), 2),
            "cpu_ms_per_query": round(float(np.mean(cpus)), 2), "encodes": len(latencies)}, vectors


def run(args: argparse.Namespace) -> int:
    settings = PipelineSettings()
    queries = load_queries(args.queries)
    onnx_dir = Path(settings.models_dir) / "onnx"
    variants = {"torch": {"backend": "torch"}, "onnx_fp32": {"backend": "onnx"},
                "onnx_int8": {"backend": "onnx", "onnx_int8": True}}
    results: dict[str, Any] = {"queries": len(queries), "rows": []}
    reference: np.ndarray | None = None
    for threads in [int(t) for t in args.threads.split(",")]:
        for name, options in variants.items():
            embedder = Embedder(settings.embedding_model, onnx_dir=onnx_dir, threads=threads, **options)
            figures, vectors = measure(embedder, queries, args.rounds)
            if name == "torch" and reference is None:
                reference = vectors
            cosine = np.sum(vectors * reference, axis=1) if reference is not None else np.ones(len(queries))
            row = {"backend": name, "threads": threads or "default", **figures,
                   "cosine_vs_torch_min": round(float(cosine.min()), 5),
                   "cosine_vs_torch_mean": round(float(cosine.mean()), 5), "runs_as": embedder.describe()}
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench-encoder", help="query encode latency/CPU: torch vs ONNX fp32 vs int8")
    parser.add_argument("--queries", nargs="+", default=list(DEFAULT_QUERIES), help="JSONL files with a query field")
    parser.add_argument("--threads", default="1,0", help="intra-op threads to try, comma list; 0 = library default")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="also write the rows to this JSON file")
    parser.set_defaults(func=run)
