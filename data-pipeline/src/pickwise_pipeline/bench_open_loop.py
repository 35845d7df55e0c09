"""Open-loop load on the gateway: requests arrive at a fixed rate whatever the answers do (a closed loop
slows down with the server and hides overload). Reports, per rate, the accepted answers' latency, how many
were shed fast (503 ``overloaded`` / 429), other 5xx, degraded answers and client timeouts.

    python -m pickwise_pipeline.bench_open_loop --gateway-url http://127.0.0.1:8000 --rates 20,40 --seconds 30

Each search is uncached: a dev-set query plus a price bound drawn per request."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pickwise_pipeline.bench import load_queries, percentile

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"


@dataclass
class Run:
    rate_rps: float
    latencies_ms: list[float] = field(default_factory=list)  # accepted (2xx) answers
    shed_latencies_ms: list[float] = field(default_factory=list)
    degraded: int = 0
    shed: int = 0
    other_5xx: int = 0
    other_5xx_codes: Counter[str] = field(default_factory=Counter)
    other_4xx: int = 0
    timeouts: int = 0
    sent: int = 0
    lag_ms: list[float] = field(default_factory=list)  # how late the generator sent (it must stay ~0)

    def summary(self) -> dict[str, Any]:
        accepted = self.latencies_ms
        return {
            "rate_rps": self.rate_rps, "sent": self.sent, "accepted": len(accepted),
            "accepted_p50_ms": round(percentile(accepted, 50), 1),
            "accepted_p99_ms": round(percentile(accepted, 99), 1),
            "accepted_max_ms": round(max(accepted), 1) if accepted else 0.0,
            "degraded": self.degraded, "shed": self.shed,
            "shed_p99_ms": round(percentile(self.shed_latencies_ms, 99), 1),
            "other_5xx": self.other_5xx, "other_5xx_codes": dict(self.other_5xx_codes),
            "other_4xx": self.other_4xx, "client_timeouts": self.timeouts,
            "send_lag_p99_ms": round(percentile(self.lag_ms, 99), 1),
        }


async def _one(client: httpx.AsyncClient, query: str, run: Run) -> None:
    start = time.perf_counter()
    try:
        response = await client.get("/v1/search", params={"q": query, "k": 10})
    except httpx.TimeoutException:
        run.timeouts += 1
        return
    except httpx.HTTPError as exc:
        run.other_5xx += 1  # a refused or reset connection is a failure the client sees
        run.other_5xx_codes[type(exc).__name__] += 1
        return
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    if response.status_code < 300:
        run.latencies_ms.append(elapsed_ms)
        run.degraded += bool(response.json().get("degraded"))
    elif response.status_code == 429 or (response.status_code == 503 and _code(response) == "overloaded"):
        run.shed += 1
        run.shed_latencies_ms.append(elapsed_ms)
    elif response.status_code >= 500:
        run.other_5xx += 1
        run.other_5xx_codes[f"{response.status_code} {_code(response)}"] += 1
    else:
        run.other_4xx += 1


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


async def run_rate(client: httpx.AsyncClient, rate_rps: float, seconds: float, queries: list[str],
                   rng: random.Random) -> Run:
    run = Run(rate_rps)
    interval_s = 1.0 / rate_rps
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for i in range(int(rate_rps * seconds)):
        due = start + i * interval_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        run.lag_ms.append(max(0.0, (time.perf_counter() - due) * 1000.0))
        query = f"{rng.choice(queries)} under {rng.randrange(8_000, 90_000, 500)}"
        tasks.append(asyncio.create_task(_one(client, query, run)))
        run.sent += 1
    await asyncio.gather(*tasks)
    return run


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    queries = load_queries(args.queries)
    rng = random.Random(args.seed)
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=500)
    results = []
    async with httpx.AsyncClient(base_url=args.gateway_url, headers={"X-API-Key": args.api_key},
                                 timeout=args.timeout_s, limits=limits) as client:
        for _ in range(args.warmup):
            await client.get("/v1/search", params={"q": rng.choice(queries)})
        for rate in [float(r) for r in args.rates.split(",")]:
            summary = (await run_rate(client, rate, args.seconds, queries, rng)).summary()
            print(json.dumps(summary), file=sys.stderr)
            results.append(summary)
            await asyncio.sleep(args.pause_s)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pickwise_pipeline.bench_open_loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway-url", default=os.environ.get("PICKWISE_GATEWAY_URL", DEFAULT_GATEWAY_URL))
    parser.add_argument("--api-key", default=os.environ.get("PICKWISE_API_KEYS", "dev-local-key").split(",")[0])
    parser.add_argument("--rates", default="20,40", help="comma-separated arrival rates (requests/s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each rate")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--pause-s", type=float, default=5.0, help="quiet time between rates")
    parser.add_argument("--timeout-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=Path, default=None, help="JSONL with a 'query' field per line")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(main_async(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
