"""``pickwise-pipeline bench``: a bounded asyncio load generator against a running gateway.

For /v1/search and /v1/recommendations at each concurrency (default 1, 10, 25) it sends a bounded number
of requests (and stops early at a time limit), then reports latency percentiles, throughput, error rate,
the per-stage timings the gateway returns in ``timings_ms`` and the CPU milliseconds per request of each
service process (``process_cpu_seconds_total`` from its /metrics before and after the level) and of this
client. The last line printed is one JSON object; ``--out`` also writes it to a file (``make bench``:
.pickwise/reports/bench.json, read by ``make report``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pickwise_client import AsyncClient, PickwiseAPIError
from pickwise_pipeline.progress import Progress, summary_line

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
ENDPOINTS = ("search", "recommendations")
STAGES = ("session", "retrieve", "rerank", "generate", "popularity_fallback", "total")
QUERIES = (
    "samsung phone under 15000",
    "phone with 8gb ram under 20k",
    "iphone 128gb",
    "best camera phone",
    "redmi note with 6gb ram",
    "budget phone with good battery",
    "oneplus 5g between 25k and 35k",
    "vivo phone 4.5 rating and above",
    "realme under 10k",
    "flagship phone with 12gb ram",
    "motorola 64gb",
    "apple iphone 13",
    "poco phone 8gb 128gb",
    "oppo under 20000",
    "nokia feature phone",
    "google pixel",
    "phone with 256gb storage",
    "cheapest samsung galaxy",
    "infinix 4gb ram",
    "iqoo gaming phone",
)
# the targets, checked against the measured numbers
TARGETS = {
    ("search", 10): {"p50_ms": 60.0, "p99_ms": 200.0, "throughput_rps_min": 50.0},
    ("recommendations", 10): {"p50_ms": 100.0},
}


@dataclass
class Cell:
    endpoint: str
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    degraded: Counter[str] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not s.startswith("2"))


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN-free: 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(cell: Cell) -> dict[str, Any]:
    lat = cell.latencies_ms
    result: dict[str, Any] = {
        "endpoint": cell.endpoint, "concurrency": cell.concurrency, "requests": cell.requests,
        "errors": cell.errors, "error_rate": round(cell.errors / cell.requests, 4) if cell.requests else 0.0,
        "throughput_rps": round(cell.requests / cell.wall_s, 1) if cell.wall_s > 0 else 0.0,
        "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1), "max_ms": round(max(lat), 1) if lat else 0.0,
        "statuses": dict(cell.statuses), "degraded": dict(cell.degraded), "variants": dict(cell.variants),
        "stages_ms": {name: {"p50": round(percentile(v, 50), 1), "p95": round(percentile(v, 95), 1)}
                      for name, v in sorted(cell.stages.items()) if v},
    }
    if cell.cpu_ms_per_request:
        result["cpu_ms_per_request"] = cell.cpu_ms_per_request
    return result


# services whose /metrics the bench reads for CPU time (the event-consumer applies the session events)
CPU_SERVICES = ("gateway", "retriever", "reranker", "generator", "session", "event-consumer")
CLIENT = "bench-client"


def default_metrics_urls(gateway_url: str) -> dict[str, str]:
    """Each service's base URL from ``PICKWISE_<NAME>_URL`` (what the launcher sets), else its default port."""
    urls = {"gateway": gateway_url}
    for port, name in enumerate(CPU_SERVICES[1:], start=8001):
        env = f"PICKWISE_{name.upper().replace('-', '_')}_URL"
        urls[name] = os.environ.get(env, f"http://127.0.0.1:{port}")
    return urls


def parse_cpu_seconds(metrics_text: str) -> float | None:
    """``process_cpu_seconds_total`` from a Prometheus exposition, None when the process does not export it."""
    for line in metrics_text.splitlines():
        if line.startswith("process_cpu_seconds_total "):
            return float(line.split()[1])
    return None


async def cpu_seconds(client: httpx.AsyncClient, urls: dict[str, str]) -> dict[str, float]:
    """CPU seconds used so far by each reachable service process, and by this client (``bench-client``)."""
    async def one(name: str, url: str) -> tuple[str, float | None]:
        try:
            response = await client.get(url.rstrip("/") + "/metrics", timeout=5.0)
        except httpx.HTTPError:
            return name, None
        return name, parse_cpu_seconds(response.text) if response.status_code == 200 else None

    found = await asyncio.gather(*(one(n, u) for n, u in urls.items()))
    out = {name: value for name, value in found if value is not None}
    out[CLIENT] = time.process_time()
    return out


def cpu_ms_per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    """CPU milliseconds per request of each process seen both before and after (0 requests: nothing)."""
    if requests <= 0:
        return {}
    return {name: round((after[name] - before[name]) * 1000 / requests, 2)
            for name in before if name in after}


def check_targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for (endpoint, concurrency), target in TARGETS.items():
        row = next((r for r in results if r["endpoint"] == endpoint and r["concurrency"] == concurrency), None)
        if row is None:
            continue
        for name, bound in target.items():
            if name.endswith("_min"):
                value, ok = row[name.removesuffix("_min")], row[name.removesuffix("_min")] >= bound
            else:
                value, ok = row[name], row[name] <= bound
            checks[f"{endpoint}@c{concurrency}.{name}"] = {"target": bound, "measured": value, "met": bool(ok)}
    return checks


def load_queries(path: Path | None) -> list[str]:
    if path is None:
        return list(QUERIES)
    queries = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                queries.append(str(json.loads(line)["query"]))
    return queries or list(QUERIES)


async def _one(client: AsyncClient, endpoint: str, query: str, n: int, cell: Cell) -> None:
    start = time.perf_counter()
    try:
        if endpoint == "search":
            body = await client.search(query, k=10, user_id=f"bench-u{n % 50}")
        else:
            body = await client.recommendations(query, k=10, user_id=f"bench-u{n % 50}")
    except PickwiseAPIError as exc:  # an error status (or a 200 whose body is not the documented model)
        cell.latencies_ms.append((time.perf_counter() - start) * 1000)
        cell.statuses[str(exc.status_code) if exc.status_code >= 400 else exc.code] += 1
        return
    except httpx.HTTPError as exc:
        cell.latencies_ms.append((time.perf_counter() - start) * 1000)
        cell.statuses[type(exc).__name__] += 1
        return
    cell.latencies_ms.append((time.perf_counter() - start) * 1000)
    cell.statuses["200"] += 1
    for name, value in body.timings_ms.items():
        if name in STAGES:
            cell.stages[name].append(float(value))
    for reason in body.degradation_reasons:
        cell.degraded[reason] += 1
    cell.variants[body.variant] += 1


async def run_cell(client: AsyncClient, endpoint: str, concurrency: int, queries: list[str], *,
                   requests: int, max_seconds: float, progress: Progress | None = None) -> Cell:
    cell = Cell(endpoint, concurrency)
    counter = itertools.count()
    deadline = time.monotonic() + max_seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            n = next(counter)
            if n >= requests:
                return
            await _one(client, endpoint, queries[n % len(queries)], n, cell)
            if progress is not None:
                progress.update()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cell.wall_s = time.perf_counter() - start
    return cell


async def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    queries = load_queries(args.queries)
    concurrencies = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    endpoints = [e.strip() for e in str(args.endpoints).split(",") if e.strip()]
    limits = httpx.Limits(max_connections=max(concurrencies), max_keepalive_connections=max(concurrencies))
    metrics_urls = default_metrics_urls(args.gateway_url) if args.cpu else {}
    results = []
    started = time.perf_counter()
    async with AsyncClient(args.gateway_url, api_key=args.api_key, timeout_s=args.timeout_s,
                           limits=limits) as client, httpx.AsyncClient() as metrics_client:
        ready = await client.http.get("/readyz")
        if ready.status_code != 200:
            raise SystemExit(f"gateway at {args.gateway_url} is not ready: {ready.status_code} {ready.text[:200]}")
        for endpoint in endpoints:
            # warm-up (connections, caches, lazily loaded models) is not measured
            await run_cell(client, endpoint, 2, queries, requests=args.warmup, max_seconds=args.max_seconds)
            for concurrency in concurrencies:
                requests = args.requests if concurrency > 1 else max(1, args.requests // 4)
                before = await cpu_seconds(metrics_client, metrics_urls) if args.cpu else {}
                with Progress(f"bench {endpoint} c={concurrency}", total=requests, unit="req", summary=False) as bar:
                    cell = await run_cell(client, endpoint, concurrency, queries, requests=requests,
                                          max_seconds=args.max_seconds, progress=bar)
                if args.cpu:
                    after = await cpu_seconds(metrics_client, metrics_urls)
                    cell.cpu_ms_per_request = cpu_ms_per_request(before, after, cell.requests)
                row = summarise(cell)
                results.append(row)
                print(_table_row(row), file=sys.stderr if args.quiet else sys.stdout, flush=True)
    seconds = time.perf_counter() - started
    print(summary_line("bench", sum(r["requests"] for r in results), seconds), file=sys.stderr, flush=True)
    return {"kind": "bench", "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "gateway_url": args.gateway_url, "queries": len(queries), "results": results,
            "targets": check_targets(results)}


def _table_row(row: dict[str, Any]) -> str:
    stages = " ".join(f"{k}={v['p50']}" for k, v in row["stages_ms"].items())
    degraded = ",".join(f"{k}:{v}" for k, v in sorted(row["degraded"].items())) or "none"
    return (f"{row['endpoint']:<16} c={row['concurrency']:<3} n={row['requests']:<5} "
            f"p50={row['p50_ms']:>7.1f} p95={row['p95_ms']:>7.1f} p99={row['p99_ms']:>7.1f} ms  "
            f"{row['throughput_rps']:>6.1f} req/s  errors={row['error_rate']:.1%}  degraded={degraded}  "
            f"stages(p50 ms): {stages}")


def _default_key() -> str:
    keys = [k.strip() for k in os.environ.get("PICKWISE_API_KEYS", "dev-local-key").split(",") if k.strip()]
    return keys[0] if keys else "dev-local-key"


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def command(args: argparse.Namespace) -> int:
    report = asyncio.run(run_bench(args))
    if args.out:
        write_report(args.out, report)
    print(json.dumps(report, separators=(",", ":")))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("bench", help="load test of the running gateway (latency, throughput, errors)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway-url", default=os.environ.get("PICKWISE_GATEWAY_URL", DEFAULT_GATEWAY_URL))
    parser.add_argument("--api-key", default=_default_key(), help="default: first of PICKWISE_API_KEYS")
    parser.add_argument("--concurrency", default="1,10,25", help="comma-separated levels")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--requests", type=int, default=300,
                        help="requests per endpoint and level (a quarter of it at concurrency 1)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="time limit per endpoint and level")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    parser.add_argument("--queries", type=Path, default=None, help="JSONL with a 'query' field per line")
    parser.add_argument("--quiet", action="store_true", help="table on stderr, only the JSON on stdout")
    parser.add_argument("--no-cpu", dest="cpu", action="store_false",
                        help="do not read the services' /metrics for CPU time per request")
    parser.add_argument("--out", type=Path, help="also write the JSON report to this file (make bench: "
                                                 ".pickwise/reports/bench.json, read by make report)")
    parser.set_defaults(func=command)
