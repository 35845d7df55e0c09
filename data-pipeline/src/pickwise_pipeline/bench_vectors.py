"""``pickwise-pipeline bench-vectors``: filtered top-50 search latency in Milvus per index type, on the
ingested catalog's vectors and on a synthetic collection of N random unit vectors with the same scalar
fields. Writes to throw-away collections (``bench_*``), dropped afterwards."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
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
SCALAR_FIELDS = ["item_id", "catalog", "brand", "group_id", "color", "price_band", "price", "ram_gb", "storage_gb",
                 "rating", "discount_pct", "feature_phone"]


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


def server_process(uri: str) -> Any:
    """The local process listening on the Milvus URI's port (Milvus Lite's server), or None."""
    import psutil

    port = int(uri.rsplit(":", 1)[1].split("/")[0])
    for proc in psutil.process_iter(["pid"]):
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in proc.net_connections("tcp")):
                return proc
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
    return None


def _cpu_s(proc: Any) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def cost(client: Any, server: Any, search: Any, vectors: np.ndarray, exprs: list[str], rounds: int
         ) -> dict[str, float]:
    """Per search: the server's CPU-ms (psutil delta over the run), this process's CPU-ms, latency p50/p99."""
    import psutil

    me = psutil.Process()
    for vector in vectors[:5]:
        search(vector.tolist(), exprs[0])
    latencies = []
    server_cpu, own_cpu = _cpu_s(server), _cpu_s(me)
    for r in range(rounds):
        for q, vector in enumerate(vectors):
            t = time.perf_counter()
            search(vector.tolist(), exprs[(q + r) % len(exprs)])
            latencies.append((time.perf_counter() - t) * 1000)
    n = len(latencies)
    return {"server_cpu_ms": round((_cpu_s(server) - server_cpu) * 1000 / n, 2),
            "client_cpu_ms": round((_cpu_s(me) - own_cpu) * 1000 / n, 2),
            "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p99_ms": round(float(np.percentile(latencies, 99)), 2), "searches": n}


def run_cost(args: argparse.Namespace) -> int:
    """Where the server's CPU per dense search goes, on the ingested collection (read-only) and on copies of
    it per index type: output fields, limit (the pool), filter expression, index type, client API."""
    from pymilvus import MilvusClient

    settings = PipelineSettings()
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    server = server_process(settings.milvus_uri)
    if server is None:
        raise SystemExit(f"no local process listens on {settings.milvus_uri}: --cost measures a Milvus Lite server")
    client = MilvusClient(uri=settings.milvus_uri, token=token)
    name = settings.milvus_collection
    client.load_collection(name)
    existing = client.query(name, filter='catalog != ""', output_fields=["item_id", "vector", "catalog"],
                            limit=16384)
    catalog = existing[0]["catalog"]
    vectors = np.array([r["vector"] for r in existing], dtype=np.float32)
    queries = vectors[np.random.default_rng(5).choice(len(vectors), size=args.queries, replace=False)]
    own = f'catalog == "{catalog}"'
    filtered = [f"{own} and ({f})" if f else own for f in FILTERS]

    def client_search(collection: str, limit: int, fields: list[str], params: dict[str, Any] | None = None) -> Any:
        return lambda vector, expr: client.search(
            collection, data=[vector], filter=expr, limit=limit, output_fields=fields, anns_field="vector",
            search_params={"metric_type": "IP", "params": params or {}})

    rows: list[dict[str, Any]] = []

    def record(label: str, search: Any, exprs: list[str]) -> None:
        row = {"variant": label, **cost(client, server, search, queries, exprs, args.rounds)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    for limit in (400, 200, 100, 50):
        record(f"FLAT limit={limit} output=item_id filter=catalog+constraints", client_search(name, limit, ["item_id"]),
               filtered)
    record("FLAT limit=400 output=all scalar fields", client_search(name, 400, SCALAR_FIELDS), filtered)
    record("FLAT limit=400 output=[] (primary key only)", client_search(name, 400, []), filtered)
    record("FLAT limit=400 output=item_id filter=catalog only", client_search(name, 400, ["item_id"]), [own])
    record("FLAT limit=400 output=item_id no filter", client_search(name, 400, ["item_id"]), [""])
    record("FLAT limit=1 output=[] no filter (per-call floor)", client_search(name, 1, []), [""])
    from pymilvus import Collection, connections

    connections.connect("bench-orm", uri=settings.milvus_uri, token=token)
    orm = Collection(name, using="bench-orm")
    record("FLAT limit=400 output=item_id via ORM Collection.search", lambda vector, expr: orm.search(
        [vector], "vector", {"metric_type": "IP", "params": {}}, limit=400, expr=expr or None,
        output_fields=["item_id"]), filtered)
    connections.disconnect("bench-orm")
    rows_all = client.query(name, filter='catalog != ""', output_fields=[*SCALAR_FIELDS, "vector"], limit=16384)
    for kind in args.indexes.split(","):
        spec = INDEXES[kind]
        copy = f"bench_cost_{kind.lower()}"
        if client.has_collection(copy):
            client.drop_collection(copy)
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type=spec["index_type"], metric_type="IP", params=spec["params"])
        client.create_collection(copy, schema=milvus_schema(vectors.shape[1]), index_params=index)
        for start in range(0, len(rows_all), 2000):
            client.insert(copy, rows_all[start:start + 2000])
        client.flush(copy)
        client.load_collection(copy)
        try:
            params = {**spec["search"], "ef": 400} if kind == "HNSW" else spec["search"]  # HNSW needs ef >= limit
            record(f"{kind} {params} limit=400 output=item_id filter=catalog+constraints",
                   client_search(copy, 400, ["item_id"], params), filtered)
        finally:
            client.drop_collection(copy)
    client.close()
    if args.out:
        Path(args.out).write_text(json.dumps({"items": len(existing), "rows": rows}, indent=2))
    return 0


SCALE_INDEXES: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    ("IVF_FLAT", {"nlist": 1024}, [{"nprobe": 16}, {"nprobe": 64}]),
    ("HNSW", {"M": 16, "efConstruction": 200}, [{"ef": 64}, {"ef": 128}, {"ef": 256}]),
]


def like_catalog(vectors: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.35) -> np.ndarray:
    """``n`` unit vectors around the catalog's own (each a catalog vector plus Gaussian noise, renormalised):
    clustered like a real catalog grown by variants of its items, unlike uniform random vectors, which no
    approximate index handles well and no catalog looks like."""
    base = vectors[rng.integers(len(vectors), size=n)]
    out = base + rng.standard_normal(base.shape).astype(np.float32) * (noise / np.sqrt(vectors.shape[1]))
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def run_scale(args: argparse.Namespace) -> int:
    """Top-50 latency and recall@50 against exact search, per index type and search parameters, on ``--scale``
    vectors shaped like the ingested catalog's; and the retriever's in-process exact search at that size."""
    from pymilvus import MilvusClient

    from pickwise_retriever.vectors import CatalogVectors

    settings = PipelineSettings()
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    client = MilvusClient(uri=settings.milvus_uri, token=token)
    nrng = np.random.default_rng(13)
    existing = client.query(settings.milvus_collection, filter='catalog != ""', output_fields=["vector"], limit=16384)
    catalog_vectors = np.array([r["vector"] for r in existing], dtype=np.float32)
    vectors = like_catalog(catalog_vectors, args.scale, nrng)
    rows = _rows(vectors, random.Random(13))
    queries = like_catalog(catalog_vectors, args.queries, nrng)
    price = np.array([r["price"] for r in rows])
    brand = np.array([r["brand"] for r in rows])
    ram = np.array([r["ram_gb"] for r in rows])
    masks = {"": np.ones(len(rows), dtype=bool), FILTERS[0]: (brand == "Samsung") & (price <= 20000.0),
             FILTERS[1]: (price >= 30000.0) & (ram >= 8.0), FILTERS[3]: price <= 15000.0}
    exprs = list(masks)
    exact = CatalogVectors([r["item_id"] for r in rows], vectors, np.ones(len(rows), dtype=bool))
    truth: dict[tuple[int, str], set[str]] = {}
    latencies = []
    for q, query in enumerate(queries):
        for expr in exprs:
            t = time.perf_counter()
            hits = exact.search(query, masks[expr], 50)
            latencies.append((time.perf_counter() - t) * 1000)
            truth[(q, expr)] = {i for i, _ in hits}
    out: list[dict[str, Any]] = [{"index": "in-process exact (numpy)", "params": {}, "recall@50": 1.0,
                                  "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                                  "p99_ms": round(float(np.percentile(latencies, 99)), 2)}]
    print(json.dumps(out[-1]), flush=True)
    specs = [("FLAT", {}, [{}]), *SCALE_INDEXES]
    for kind, build, searches in specs:
        name = f"bench_scale_{kind.lower()}"
        if client.has_collection(name):
            client.drop_collection(name)
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type=kind, metric_type="IP", params=build)
        client.create_collection(name, schema=milvus_schema(vectors.shape[1]), index_params=index)
        t = time.perf_counter()
        try:
            for start in range(0, len(rows), 2000):
                client.insert(name, rows[start:start + 2000])
            client.flush(name)
            client.load_collection(name)
            build_s = round(time.perf_counter() - t, 1)
            for params in searches:
                latencies, recalls, recalls_filtered = [], [], []
                for q, query in enumerate(queries):
                    for expr in exprs:
                        t = time.perf_counter()
                        hits = client.search(name, data=[query.tolist()], filter=expr, limit=50,
                                             output_fields=["item_id"], anns_field="vector",
                                             search_params={"metric_type": "IP", "params": params})
                        latencies.append((time.perf_counter() - t) * 1000)
                        found = {str(h["entity"]["item_id"]) for h in hits[0]}
                        want = truth[(q, expr)]
                        recall = len(found & want) / max(1, len(want))
                        (recalls_filtered if expr else recalls).append(recall)
                row = {"index": kind, "build": build, "params": params, "insert_index_load_s": build_s,
                       "recall@50": round(float(np.mean(recalls)), 4),
                       "recall@50_filtered": round(float(np.mean(recalls_filtered)), 4),
                       "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                       "p99_ms": round(float(np.percentile(latencies, 99)), 2)}
                out.append(row)
                print(json.dumps(row), flush=True)
        finally:
            client.drop_collection(name)
    client.close()
    if args.out:
        Path(args.out).write_text(json.dumps({"vectors": len(rows), "queries": len(queries), "rows": out}, indent=2))
    return 0


def run_in_process(args: argparse.Namespace) -> int:
    """The retriever's in-process exact search (top 400, the pool) at several catalog sizes, no filter and
    filters keeping 50 % and 10 % of the rows; BLAS threads as the environment sets them."""
    from pymilvus import MilvusClient

    from pickwise_retriever.vectors import CatalogVectors

    settings = PipelineSettings()
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    client = MilvusClient(uri=settings.milvus_uri, token=token)
    existing = client.query(settings.milvus_collection, filter='catalog != ""', output_fields=["vector"], limit=16384)
    client.close()
    base = np.array([r["vector"] for r in existing], dtype=np.float32)
    rng = np.random.default_rng(13)
    for n in [int(x) for x in args.in_process_sizes.split(",")]:
        matrix = base[:n] if n <= len(base) else like_catalog(base, n, rng)
        index = CatalogVectors([str(i) for i in range(n)], matrix, np.ones(n, dtype=bool))
        queries = like_catalog(base, args.queries, rng)
        for share in (1.0, 0.5, 0.1):
            mask = rng.random(n) < share
            latencies = []
            for _ in range(args.rounds):
                for query in queries:
                    t = time.perf_counter()
                    index.search(query, mask, 400)
                    latencies.append((time.perf_counter() - t) * 1000)
            print(json.dumps({"items": n, "filter_keeps": share, "limit": 400,
                              "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                              "p99_ms": round(float(np.percentile(latencies, 99)), 2)}), flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.cost:
        return run_cost(args)
    if args.in_process_sizes:
        return run_in_process(args)
    if args.scale:
        return run_scale(args)
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
    parser.add_argument("--cost", action="store_true",
                        help="per-search CPU of the local Milvus Lite server by output fields, limit, filter, "
                             "index type and client API, on the ingested collection")
    parser.add_argument("--scale", type=int, default=0,
                        help="recall@50 vs exact and latency per index and search parameters on this many vectors "
                             "shaped like the ingested catalog's, and the in-process exact search at that size")
    parser.add_argument("--in-process-sizes", default="",
                        help="comma list of catalog sizes: latency of the retriever's in-process exact search")
    parser.add_argument("--queries", type=int, default=40, help="--cost / --scale / --in-process-sizes: queries")
    parser.add_argument("--out", help="--cost / --scale: also write the rows to this JSON file")
    parser.set_defaults(func=run)
