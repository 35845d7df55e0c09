"""Open-loop load on the gateway: requests arrive at a fixed rate whatever the answers do (a closed loop
slows down with the server and hides overload). Reports, per endpoint and rate, the accepted answers' latency,
how many were shed fast (503 ``overloaded`` / 429), other 5xx, degraded answers (by reason), client timeouts
and the CPU milliseconds per request of every process of the stack (``stack_cpu``).

    python -m pickwise_pipeline.bench_open_loop --gateway-url http://127.0.0.1:8000 --rates 40 --seconds 60

Every request carries a query not sent before in the run (the distinct shopper-query stream of ``make bench``,
or ``--queries FILE``), so caches are cold: ``caches: cold (distinct queries)``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pickwise_pipeline.bench import CACHES_COLD, StackCpu, distinct_queries, percentile, write_report
from pickwise_pipeline.shopper_queries import DEFAULT_SEED

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"


@dataclass
class Run:
    rate_rps: float
    endpoint: str = "search"
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
    degradation_reasons: Counter[str] = field(default_factory=Counter)
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        accepted = self.latencies_ms
        return {
            "endpoint": self.endpoint, "rate_rps": self.rate_rps, "caches": CACHES_COLD, "sent": self.sent,
            "accepted": len(accepted),
            "accepted_p50_ms": round(percentile(accepted, 50), 1),
            "accepted_p95_ms": round(percentile(accepted, 95), 1),
            "accepted_p99_ms": round(percentile(accepted, 99), 1),
            "accepted_max_ms": round(max(accepted), 1) if accepted else 0.0,
            "degraded": self.degraded, "degradation_reasons": dict(self.degradation_reasons), "shed": self.shed,
            "shed_p99_ms": round(percentile(self.shed_latencies_ms, 99), 1),
            "other_5xx": self.other_5xx, "other_5xx_codes": dict(self.other_5xx_codes),
            "other_4xx": self.other_4xx, "client_timeouts": self.timeouts,
            "send_lag_p99_ms": round(percentile(self.lag_ms, 99), 1),
            **({"cpu_ms_per_request": self.cpu_ms_per_request} if self.cpu_ms_per_request else {}),
        }


async def _one(client: httpx.AsyncClient, query: str, run: Run) -> None:
    start = time.perf_counter()
    try:
        if run.endpoint == "search":
            response = await client.get("/v1/search", params={"q": query, "k": 10})
        else:
            response = await client.post("/v1/recommendations", json={"query": query, "k": 10})
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
        body = response.json()
        run.degraded += bool(body.get("degraded"))
        run.degradation_reasons.update(body.get("degradation_reasons") or [])
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


async def run_rate(client: httpx.AsyncClient, rate_rps: float, seconds: float, queries: list[str] | Iterator[str],
                   rng: random.Random, *, endpoint: str = "search") -> Run:
    """``rate_rps * seconds`` requests at a fixed rate. An iterator gives one query per request, each used once
    (the run stops sending when it is spent); a list is drawn from at random with a random price bound."""
    run = Run(rate_rps, endpoint)
    stream = queries if isinstance(queries, Iterator) else None
    interval_s = 1.0 / rate_rps
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    for i in range(int(rate_rps * seconds)):
        due = start + i * interval_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        run.lag_ms.append(max(0.0, (time.perf_counter() - due) * 1000.0))
        if stream is not None:
            query = next(stream, None)
            if query is None:
                break
        else:
            query = f"{rng.choice(queries)} under {rng.randrange(8_000, 90_000, 500)}"  # type: ignore[arg-type]
        tasks.append(asyncio.create_task(_one(client, query, run)))
        run.sent += 1
    await asyncio.gather(*tasks)
    return run


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    needed = len(endpoints) * (args.warmup + sum(int(rate * args.seconds) for rate in rates))
    stream = iter(distinct_queries(args.queries, needed, seed=args.seed))
    rng = random.Random(args.seed)
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=500)
    results = []
    async with httpx.AsyncClient(base_url=args.gateway_url, headers={"X-API-Key": args.api_key},
                                 timeout=args.timeout_s, limits=limits) as client, httpx.AsyncClient() as metrics:
        cpu = StackCpu(args.gateway_url, metrics)
        for endpoint in endpoints:
            for _ in range(args.warmup):
                await _one(client, next(stream), Run(0.0, endpoint))
            for rate in rates:
                await cpu.start()
                run = await run_rate(client, rate, args.seconds, stream, rng, endpoint=endpoint)
                run.cpu_ms_per_request = await cpu.per_request(run.sent)
                summary = run.summary() | {"load_average": [round(x, 2) for x in os.getloadavg()]}
                print(_line(summary), file=sys.stderr, flush=True)
                results.append(summary)
                await asyncio.sleep(args.pause_s)
    return results


def _line(row: dict[str, Any]) -> str:
    cpu = "  ".join(f"{k}={v}" for k, v in row.get("cpu_ms_per_request", {}).items()) or "not measured"
    return (f"{row['endpoint']:<16} {row['rate_rps']:.0f} req/s open loop: sent={row['sent']} "
            f"accepted={row['accepted']} p50={row['accepted_p50_ms']} p95={row['accepted_p95_ms']} "
            f"p99={row['accepted_p99_ms']} ms  shed={row['shed']} 5xx={row['other_5xx']} "
            f"timeouts={row['client_timeouts']} degraded={row['degradation_reasons'] or 0}  "
            f"caches: {row['caches']}  load {'/'.join(str(x) for x in row['load_average'])}\n"
            f"    CPU ms/request: {cpu}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pickwise_pipeline.bench_open_loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway-url", default=os.environ.get("PICKWISE_GATEWAY_URL", DEFAULT_GATEWAY_URL))
    parser.add_argument("--api-key", default=os.environ.get("PICKWISE_API_KEYS", "dev-local-key").split(",")[0])
    parser.add_argument("--rates", default="40", help="comma-separated arrival rates (requests/s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of each rate")
    parser.add_argument("--endpoints", default="search,recommendations", help="comma-separated: search, "
                        "recommendations (POST /v1/recommendations)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--pause-s", type=float, default=5.0, help="quiet time between rates")
    parser.add_argument("--timeout-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the generated query stream")
    parser.add_argument("--queries", type=Path, default=None,
                        help="queries, one a line (JSONL 'query' or plain text); default: generated, distinct")
    parser.add_argument("--out", type=Path, help="also write the JSON report here (make bench-open-loop: "
                                                 ".pickwise/reports/bench-open-loop.json)")
    args = parser.parse_args(argv)
    results = asyncio.run(main_async(args))
    report = {"kind": "bench-open-loop", "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "caches": CACHES_COLD, "cpu_count": os.cpu_count(), "results": results}
    if args.out:
        write_report(args.out, report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
