"""``pickwise-pipeline bench``: a bounded asyncio load generator against a running gateway.

For /v1/search and /v1/recommendations at each concurrency (default 1, 10, 25) it sends a bounded number
of requests (and stops early at a time limit), then reports latency percentiles, throughput, error rate,
degradations (by reason), the per-stage timings the gateway returns in ``timings_ms`` and the CPU
milliseconds per request of every process of the stack (psutil, before and after each level; see
``stack_cpu``), of this client, and their sum.

``--mode distinct`` (the default) sends every query once in the whole run — a fixed-seed stream of distinct
shopper queries (``shopper_queries``) or ``--queries FILE`` — so the gateway's retrieval cache and the
encoder's LRU are as cold as a population of shoppers keeps them; rows say ``caches: cold (distinct
queries)``. ``--mode cache-hit`` cycles 20 queries (a cache-hit figure, labelled so). The last line printed
is one JSON object; ``--out`` also writes it to a file (``make bench``: .pickwise/reports/bench.json, read by
``make report``).
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pickwise_client import AsyncClient, PickwiseAPIError
from pickwise_pipeline import profiles, stack_cpu
from pickwise_pipeline.progress import Progress, summary_line
from pickwise_pipeline.shopper_queries import DEFAULT_SEED, shopper_queries

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
ENDPOINTS = ("search", "recommendations")
STAGES = ("session", "retrieve", "rerank", "generate", "popularity_fallback", "total")
MODES = ("distinct", "cache-hit")
CACHES_COLD = "cold (distinct queries)"
# --mode cache-hit: these 20 cycled through the gateway's retrieval cache
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
# issue 13's targets for uncached search (closed loop, concurrency 10), checked against the measured numbers
TARGETS = {
    ("search", 10): {"p99_ms": 250.0, "throughput_rps_min": 80.0, "cpu_ms_per_request_stack_max": 20.0},
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
    caches: str = CACHES_COLD

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
        "endpoint": cell.endpoint, "concurrency": cell.concurrency, "caches": cell.caches,
        "requests": cell.requests,
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


def _measured(row: dict[str, Any], name: str) -> float | None:
    if name == "cpu_ms_per_request_stack":
        return row.get("cpu_ms_per_request", {}).get("stack total")
    return row.get(name)


def check_targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each target against the cold-cache row of its endpoint and concurrency (a cache-hit row proves nothing)."""
    checks: dict[str, Any] = {}
    for (endpoint, concurrency), target in TARGETS.items():
        row = next((r for r in results if r["endpoint"] == endpoint and r["concurrency"] == concurrency
                    and r.get("caches", CACHES_COLD) == CACHES_COLD), None)
        if row is None:
            continue
        for name, bound in target.items():
            is_min = name.endswith("_min")
            value = _measured(row, name.removesuffix("_min").removesuffix("_max"))
            if value is None:
                continue
            ok = value >= bound if is_min else value <= bound
            checks[f"{endpoint}@c{concurrency}.{name}"] = {"target": bound, "measured": value, "met": bool(ok)}
    return checks


def load_queries(path: Path | None) -> list[str]:
    """Queries of a file, one a line: JSONL with a ``query`` field or plain text (None: the 20 cache-hit ones)."""
    if path is None:
        return list(QUERIES)
    queries = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                queries.append(str(json.loads(line)["query"]) if line.startswith("{") else line)
    return queries or list(QUERIES)


def distinct_queries(path: Path | None, needed: int, *, seed: int = DEFAULT_SEED) -> list[str]:
    """At least ``needed`` distinct queries: the file's (duplicates dropped, order kept) or the generator's."""
    if path is None:
        return shopper_queries(max(needed, 5000), seed=seed)
    queries = list(dict.fromkeys(load_queries(path)))
    if len(queries) < needed:
        raise SystemExit(f"{path} has {len(queries)} distinct queries; this run needs {needed} (no repeats in "
                         "--mode distinct): pass a bigger file, fewer --requests, or --mode cache-hit")
    return queries


class StackCpu:
    """CPU seconds of the stack's processes (psutil) and of this client, sampled around a level; falls back to
    the services' ``process_cpu_seconds_total`` when no process of the stack is visible (a remote gateway)."""

    def __init__(self, gateway_url: str, metrics_client: httpx.AsyncClient) -> None:
        self.port = urlsplit(gateway_url).port or 80
        self.urls = default_metrics_urls(gateway_url)
        self.metrics_client = metrics_client
        self._before: dict[int, stack_cpu.ProcessSample] = {}
        self._before_metrics: dict[str, float] = {}
        self._client_before = time.process_time()

    async def start(self) -> None:
        self._before = stack_cpu.sample_stack(self.port)
        self._before_metrics = {} if self._before else await cpu_seconds(self.metrics_client, self.urls)
        self._client_before = time.process_time()

    async def per_request(self, requests: int) -> dict[str, float]:
        client_ms = round((time.process_time() - self._client_before) * 1000 / requests, 2) if requests else 0.0
        if self._before:
            out = stack_cpu.cpu_ms_by_label(self._before, stack_cpu.sample_stack(self.port), requests)
        else:
            out = cpu_ms_per_request(self._before_metrics, await cpu_seconds(self.metrics_client, self.urls),
                                     requests)
            out.pop(CLIENT, None)
            if out:
                out["stack total"] = round(sum(out.values()), 2)
        return out | ({CLIENT: client_ms} if requests else {})


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


async def run_cell(client: AsyncClient, endpoint: str, concurrency: int, queries: Sequence[str] | Iterator[str], *,
                   requests: int, max_seconds: float, progress: Progress | None = None) -> Cell:
    """``requests`` requests from ``concurrency`` workers; a sequence is cycled (cache-hit), an iterator is
    used up one query per request, never repeating one (the cell ends early when it runs out)."""
    cell = Cell(endpoint, concurrency)
    counter = itertools.count()
    deadline = time.monotonic() + max_seconds
    stream = queries if isinstance(queries, Iterator) else None

    async def worker() -> None:
        while time.monotonic() < deadline:
            n = next(counter)
            if n >= requests:
                return
            if stream is not None:
                query = next(stream, None)
                if query is None:
                    return
            else:
                query = queries[n % len(queries)]  # type: ignore[index]
            await _one(client, endpoint, query, n, cell)
            if progress is not None:
                progress.update()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cell.wall_s = time.perf_counter() - start
    return cell


def requests_at(concurrency: int, requests: int) -> int:
    return requests if concurrency > 1 else max(1, requests // 4)


async def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    concurrencies = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    endpoints = [e.strip() for e in str(args.endpoints).split(",") if e.strip()]
    needed = len(endpoints) * (args.warmup + sum(requests_at(c, args.requests) for c in concurrencies))
    if args.mode == "distinct":
        queries: list[str] = distinct_queries(args.queries, needed, seed=args.seed)
        source: Sequence[str] | Iterator[str] = iter(queries)
        caches = CACHES_COLD
    else:
        queries = load_queries(args.queries)
        source = queries
        caches = f"cache-hit ({len(queries)} queries cycled)"
    limits = httpx.Limits(max_connections=max(concurrencies), max_keepalive_connections=max(concurrencies))
    results = []
    started = time.perf_counter()
    async with AsyncClient(args.gateway_url, api_key=args.api_key, timeout_s=args.timeout_s,
                           limits=limits) as client, httpx.AsyncClient() as metrics_client:
        ready = await client.http.get("/readyz")
        if ready.status_code != 200:
            raise SystemExit(f"gateway at {args.gateway_url} is not ready: {ready.status_code} {ready.text[:200]}")
        cpu = StackCpu(args.gateway_url, metrics_client)
        out = sys.stderr if args.quiet else sys.stdout
        profiled: dict[str, Any] = {}
        for endpoint in endpoints:
            # warm-up (connections, lazily loaded models) is not measured; in distinct mode it uses its own queries
            await run_cell(client, endpoint, 2, source, requests=args.warmup, max_seconds=args.max_seconds)
            for concurrency in concurrencies:
                requests = requests_at(concurrency, args.requests)
                if args.cpu:
                    await cpu.start()
                # --profile-s: py-spy on each service during the first measured level
                recordings = (profiles.start(cpu.port, args.profile_s, args.profile_raw_dir)
                              if args.profile_s and not profiled and not results else [])
                with Progress(f"bench {endpoint} c={concurrency}", total=requests, unit="req", summary=False) as bar:
                    cell = await run_cell(client, endpoint, concurrency, source, requests=requests,
                                          max_seconds=args.max_seconds, progress=bar)
                cell.caches = caches
                if args.cpu:
                    cell.cpu_ms_per_request = await cpu.per_request(cell.requests)
                if recordings:
                    title = f"GET /v1/{endpoint} c={concurrency}, {caches}, {args.profile_s:.0f} s"
                    profiled = await asyncio.to_thread(profiles.finish, recordings, args.profile_svg_dir, title=title)
                row = summarise(cell)
                row["load_average"] = [round(x, 2) for x in os.getloadavg()]
                results.append(row)
                print(_table_row(row), file=out, flush=True)
    seconds = time.perf_counter() - started
    print(summary_line("bench", sum(r["requests"] for r in results), seconds), file=sys.stderr, flush=True)
    return {"kind": "bench", "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "gateway_url": args.gateway_url, "mode": args.mode, "caches": caches, "queries": len(queries),
            "seed": args.seed if args.mode == "distinct" and args.queries is None else None,
            "queries_file": str(args.queries) if args.queries else None, "cpu_count": os.cpu_count(),
            "results": results, "targets": check_targets(results),
            **({"profiles": profiled} if profiled else {})}


def _table_row(row: dict[str, Any]) -> str:
    stages = " ".join(f"{k}={v['p50']}" for k, v in row["stages_ms"].items())
    degraded = ",".join(f"{k}:{v}" for k, v in sorted(row["degraded"].items())) or "none"
    cpu = "  ".join(f"{k}={v}" for k, v in row.get("cpu_ms_per_request", {}).items()) or "not measured"
    load = "/".join(str(x) for x in row.get("load_average", [])) or "?"
    return (f"{row['endpoint']:<16} c={row['concurrency']:<3} n={row['requests']:<5} "
            f"p50={row['p50_ms']:>7.1f} p95={row['p95_ms']:>7.1f} p99={row['p99_ms']:>7.1f} ms  "
            f"{row['throughput_rps']:>6.1f} req/s  errors={row['error_rate']:.1%}  degraded={degraded}  "
            f"caches: {row.get('caches', CACHES_COLD)}  load {load}\n"
            f"    stages(p50 ms): {stages}\n    CPU ms/request: {cpu}")


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
    parser.add_argument("--mode", choices=MODES, default="distinct",
                        help="distinct: every query sent once in the run, caches cold (default); "
                             "cache-hit: 20 queries (or --queries) cycled, a cache-hit figure")
    parser.add_argument("--queries", type=Path, default=None,
                        help="queries, one a line (JSONL with a 'query' field, or plain text); default: "
                             "--mode distinct generates distinct shopper queries (shopper_queries, --seed)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the generated query stream")
    parser.add_argument("--quiet", action="store_true", help="table on stderr, only the JSON on stdout")
    parser.add_argument("--no-cpu", dest="cpu", action="store_false",
                        help="do not measure the stack's CPU time per request")
    parser.add_argument("--profile-s", type=float, default=0.0,
                        help="py-spy each service for this many seconds during the first level (make profile)")
    parser.add_argument("--profile-svg-dir", type=Path, default=Path("docs/img"),
                        help="where flame-<service>.svg go")
    parser.add_argument("--profile-raw-dir", type=Path, default=Path(".pickwise/reports/profiles"),
                        help="where py-spy's raw stacks (flame-<service>.txt) go")
    parser.add_argument("--out", type=Path, help="also write the JSON report to this file (make bench: "
                                                 ".pickwise/reports/bench.json, read by make report)")
    parser.set_defaults(func=command)
