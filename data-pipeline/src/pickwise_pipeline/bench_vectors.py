"""``pickwise-pipeline bench-vectors``: filtered top-50 search latency in Milvus per index type, on the
ingested catalog's vectors and on a synthetic collection of N random unit vectors with the same scalar
fields. Writes to throw-away collections (``bench_*``), dropped afterwards."""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

import numpy as np

from pickwise_pipeline.ingest import milvus_schema
from pickwise_pipeline.settings import PipelineSettings

INDEXES: dict[str, dict[str, Any]] = {
    "FLAT": {"index_type": "FLAT", "params": {}, "search": {}},
    "IVF_FLAT": {"index_type": "IVF_FLAT", "params": {"nlist": 128}, "search": {"nprobe": 16}},
    "HNSW": {"index_type": "HNSW", "params": {"M": 16, "efConstruction": 128}, "search": {"ef": 64}},
}
FILTERS = ['brand in ["Samsung"] and price <= 20000.0', "price >= 30000.0 and ram_gb >= 8.0",
           'brand in ["Apple", "Google"]', "price <= 15000.0", ""]


def _rows(vectors: np.ndarray, rng: random.Random, ids: list[str] | None = None) -> list[dict[str, Any]]:
    brands = ["Samsung", "Apple", "Xiaomi", "Realme", "OPPO", "Vivo", "Nokia", "Google", "Motorola", "Infinix"]
    out = []
    for n, vector in enumerate(vectors):
        price = float(int(rng.lognormvariate(9.8, 0.6)))
        out.append({"item_id": ids[n] if ids else f"b-{n}", "vector": vector.tolist(), "catalog": "bench",
                    "brand": rng.choice(brands), "group_id": f"g{n}", "color": "black", "price_band": "mid",
                    "price": price, "ram_gb": float(rng.choice([2, 4, 6, 8, 12])), "storage_gb": 128.0,
                    "rating": 4.2, "discount_pct": 10.0, "feature_phone": False})
    return out


def _measure(client: Any, name: str, spec: dict[str, Any], rows: list[dict[str, Any]], queries: np.ndarray,
             rounds: int) -> dict[str, Any]:
    if client.has_collection(name):
        client.drop_collection(name)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type=spec["index_type"], metric_type="IP", params=spec["params"])
    client.create_collection(name, schema=milvus_schema(len(rows[0]["vector"])), index_params=index)
    t = time.perf_counter()
    for start in range(0, len(rows), 2000):
        client.insert(name, rows[start:start + 2000])
    client.flush(name)
    client.load_collection(name)
    load_s = time.perf_counter() - t
    latencies = []
    try:
        for r in range(rounds):
            for q, vector in enumerate(queries):
                expr = FILTERS[(q + r) % len(FILTERS)]
                t = time.perf_counter()
                client.search(name, data=[vector.tolist()], filter=expr, limit=50, output_fields=["item_id"],
                              search_params={"metric_type": "IP", "params": spec["search"]}, anns_field="vector")
                latencies.append((time.perf_counter() - t) * 1000)
    finally:
        client.drop_collection(name)
    return {"insert_index_load_s": round(load_s, 1), "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p99_ms": round(float(np.percentile(latencies, 99)), 2), "searches": len(latencies)}


def run(args: argparse.Namespace) -> int:
    from pymilvus import MilvusClient

    settings = PipelineSettings()
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    client = MilvusClient(uri=settings.milvus_uri, token=token)
    rng = random.Random(5)
    nrng = np.random.default_rng(5)
    results: dict[str, Any] = {}
    try:
        existing = client.query(settings.milvus_collection, filter='catalog != ""', output_fields=["item_id", "vector"],
                                limit=16384) if client.has_collection(settings.milvus_collection) else []
        if existing:
            vectors = np.array([r["vector"] for r in existing], dtype=np.float32)
            rows = _rows(vectors, rng, [r["item_id"] for r in existing])
            queries = vectors[nrng.choice(len(vectors), size=40, replace=False)]
            for kind in args.indexes.split(","):
                results[f"catalog_{len(rows)}_{kind}"] = _measure(client, f"bench_{kind.lower()}", INDEXES[kind],
                                                                  rows, queries, args.rounds)
                print(kind, "catalog", results[f"catalog_{len(rows)}_{kind}"], flush=True)
        if args.n:
            vectors = nrng.standard_normal((args.n, args.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            rows = _rows(vectors, rng)
            queries = vectors[nrng.choice(args.n, size=20, replace=False)]
            for kind in args.synthetic_indexes.split(","):
                key = f"synthetic_{args.n}_{kind}"
                results[key] = _measure(client, f"bench_{kind.lower()}", INDEXES[kind], rows, queries,
                                        max(1, args.rounds // 2))
                print(kind, "synthetic", results[key], flush=True)
    finally:
        client.close()
    print(json.dumps(results))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench-vectors", help="Milvus filtered top-50 latency per index type")
    parser.add_argument("--indexes", default="FLAT,IVF_FLAT,HNSW", help="for the ingested catalog's vectors")
    parser.add_argument("--n", type=int, default=0, help="also a synthetic collection of this many vectors")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--synthetic-indexes", default="FLAT,IVF_FLAT")
    parser.add_argument("--rounds", type=int, default=5)
    parser.set_defaults(func=run)
