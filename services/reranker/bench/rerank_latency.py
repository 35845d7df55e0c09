"""Latency of POST /v1/rerank with real retrieval candidates (50 per request) and a user with Redis
features, against a running reranker and retriever:

    .venv/bin/python services/reranker/bench/rerank_latency.py --reranker http://127.0.0.1:8002 \
        --retriever http://127.0.0.1:8001 --redis redis://127.0.0.1:6379/0 --requests 500

Prints client-side p50/p95/p99 (sequential requests, one connection) and the server's own stage timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx
import redis

QUERIES = ["samsung under 15k", "phone with 8gb ram", "best rated realme", "apple iphone", "5g phone under 20000",
           "cheapest nokia", "vivo 128gb", "flagship above 50000", "oppo with big discount", "redmi 6gb ram"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reranker", default="http://127.0.0.1:8002")
    parser.add_argument("--retriever", default="http://127.0.0.1:8001")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args()

    with httpx.Client(timeout=10) as client:
        bodies = []
        for q in QUERIES:
            r = client.post(args.retriever + "/v1/retrieve", json={"query": q, "k": args.k}).json()
            bodies.append({"query": q, "candidates": r["candidates"], "parsed": r["parsed"], "k": 10,
                           "user_id": "bench-user", "explain": True})
        rds = redis.Redis.from_url(args.redis, decode_responses=True)
        clicked = [c["item"]["item_id"] for b in bodies for c in b["candidates"][5:7]]
        rds.delete("u:{bench-user}:clicks")
        rds.lpush("u:{bench-user}:clicks", *clicked)
        now = time.time()
        rds.hset("u:{bench-user}:affinity", mapping={"brand:samsung": 3, "brand:samsung:t": now,
                                                     "category:mobile": 5, "category:mobile:t": now})
        for body in bodies[:3]:
            client.post(args.reranker + "/v1/rerank", json=body)  # warm-up
        lat, stages = [], {}
        for n in range(args.requests):
            body = bodies[n % len(bodies)]
            t = time.perf_counter()
            resp = client.post(args.reranker + "/v1/rerank", json=body)
            lat.append((time.perf_counter() - t) * 1000)
            resp.raise_for_status()
            for k, v in resp.json()["timings_ms"].items():
                stages.setdefault(k, []).append(v)
        info = client.post(args.reranker + "/v1/rerank", json=bodies[0]).json()

    def pct(values: list[float], p: float) -> float:
        return round(statistics.quantiles(values, n=100)[p - 1], 2)

    print(json.dumps({
        "requests": args.requests, "candidates_per_request": [len(b["candidates"]) for b in bodies],
        "cross_encoder": info["cross_encoder"], "ranker": info["ranker"],
        "features_available": info["features_available"],
        "client_ms": {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99), "max": round(max(lat), 2)},
        "server_stage_ms_p95": {k: pct(v, 95) for k, v in stages.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
