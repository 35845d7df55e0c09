"""`make soak`: a stack of its own on free ports, a steady mixed load at a bounded rate for a while
(10 minutes by default), the resident memory of every process sampled every 10 s; reports memory growth
per process, the answers by status, and events acknowledged vs stored. Not part of `make test`.

    .venv/bin/python tests/chaos/soak.py [--duration-s 600] [--rate 10] [--out .pickwise/reports/soak.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from pickwise_common.launcher.processes import ManagedProcess
from pickwise_common.launcher.stack import DEFAULT_API_KEY, Stack, StackConfig, start_stack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from traffic import Traffic  # noqa: E402  (a sibling module; tests/ is not a package)

MB = 1024 * 1024


def rss_mb(proc: ManagedProcess) -> float | None:
    """Resident memory of a managed process and everything it started (workers, Milvus Lite's binary)."""
    if proc.pid is None or not proc.alive():
        return None
    try:
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
        return sum(p.memory_info().rss for p in tree if p.is_running()) / MB
    except psutil.Error:
        return None


def processes(stack: Stack) -> dict[str, ManagedProcess]:
    return {**(stack.infra.processes if stack.infra else {}), **stack.services}


def memory_report(samples: list[tuple[float, dict[str, float | None]]], warmup_s: float) -> dict[str, Any]:
    """Per process: RSS at the first sample, after warm-up, at the end, the peak, and the growth after
    warm-up (what a leak would show; the first minute fills caches and model arenas)."""
    report: dict[str, Any] = {}
    names = sorted({name for _, sample in samples for name in sample})
    for name in names:
        series = [(t, s[name]) for t, s in samples if s.get(name) is not None]
        if not series:
            continue
        after = next((mb for t, mb in series if t >= warmup_s), series[-1][1])
        first, last = series[0][1], series[-1][1]
        report[name] = {"start_mb": round(first or 0, 1), "after_warmup_mb": round(after or 0, 1),
                        "end_mb": round(last or 0, 1), "peak_mb": round(max(mb or 0 for _, mb in series), 1),
                        "growth_after_warmup_mb": round((last or 0) - (after or 0), 1),
                        "growth_after_warmup_pct": round(100 * ((last or 0) - (after or 0)) / (after or 1), 1)}
    return report


async def stored_count(postgres_url: str, ids: set[str]) -> int:
    conn = await asyncpg.connect(postgres_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM events WHERE event_id = ANY($1::uuid[])", list(ids)))
    finally:
        await conn.close()


async def soak(stack: Stack, *, duration_s: float, rate_per_s: float, sample_every_s: float,
               warmup_s: float) -> dict[str, Any]:
    traffic = Traffic(stack.url("gateway"), DEFAULT_API_KEY, events_per_s=rate_per_s * 0.4,
                      searches_per_s=rate_per_s * 0.5, recommendations_per_s=rate_per_s * 0.1)
    traffic.phase = "soak"
    stop = asyncio.Event()
    runner = asyncio.create_task(traffic.run(stop))
    samples: list[tuple[float, dict[str, float | None]]] = []
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < duration_s:
        samples.append((elapsed, {name: rss_mb(proc) for name, proc in processes(stack).items()}))
        tally = traffic.tally()
        print(f"  {elapsed:5.0f} s  events {dict(tally.events)}  searches {dict(tally.searches)}", flush=True)
        await asyncio.sleep(min(sample_every_s, max(0.0, duration_s - elapsed)))
    samples.append((time.monotonic() - started, {name: rss_mb(proc) for name, proc in processes(stack).items()}))
    stop.set()
    await runner
    tally = traffic.tally()
    postgres_url = stack.config.infra_config().postgres_url
    stored, deadline = 0, time.monotonic() + 120
    while time.monotonic() < deadline:  # let the consumer catch up before counting
        stored = await stored_count(postgres_url, traffic.acked_ids)
        if stored == len(traffic.acked_ids):
            break
        await asyncio.sleep(1)
    restarts = [r.name for r in (stack.supervisor.restarts if stack.supervisor else [])]
    restarts += [r.name for r in (stack.infra.supervisor.restarts if stack.infra and stack.infra.supervisor else [])]
    return {"duration_s": round(duration_s), "rate_per_s": rate_per_s, "sample_every_s": sample_every_s,
            "requests": tally.summary(), "skipped_in_flight_cap": traffic.skipped,
            "events_acknowledged": len(traffic.acked_ids), "events_stored": stored, "restarts": restarts,
            "memory_mb": memory_report(samples, warmup_s),
            "rss_series_mb": {name: [round(s[name] or 0, 1) for _, s in samples if name in s]
                              for name in processes(stack)}}


def print_report(report: dict[str, Any]) -> None:
    print(f"\nsoak: {report['duration_s']} s at {report['rate_per_s']} req/s")
    print(f"{'process':<16}{'start':>8}{'warm':>8}{'end':>8}{'peak':>8}{'growth':>9}{'%':>7}")
    for name, mem in report["memory_mb"].items():
        print(f"{name:<16}{mem['start_mb']:>8}{mem['after_warmup_mb']:>8}{mem['end_mb']:>8}{mem['peak_mb']:>8}"
              f"{mem['growth_after_warmup_mb']:>9}{mem['growth_after_warmup_pct']:>7}")
    requests = report["requests"]
    print(f"events {requests['events']}  acknowledged {report['events_acknowledged']}  "
          f"stored {report['events_stored']}")
    print(f"searches {requests['searches']}  5xx other than shedding {requests['search_5xx']}  "
          f"shed {requests['shed_503']}  degraded {requests['degraded']}")
    print(f"skipped (in-flight cap) {report['skipped_in_flight_cap']}  restarts {report['restarts']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second, all kinds together")
    parser.add_argument("--sample-every-s", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path(".pickwise/reports/soak.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="pickwise-soak-") as tmp:
        config = StackConfig.on_free_ports(Path(tmp), load_catalog=True)
        config.extra_env = {"PICKWISE_ENVIRONMENT": "local", "PICKWISE_API_KEYS": DEFAULT_API_KEY,
                            "PICKWISE_RATE_LIMIT_PER_MINUTE": "1000000", "PICKWISE_LOG_LEVEL": "WARNING"}
        started = time.monotonic()
        stack = start_stack(config)
        print(f"stack ready in {time.monotonic() - started:.0f} s; soaking for {args.duration_s:.0f} s", flush=True)
        try:
            report = asyncio.run(soak(stack, duration_s=args.duration_s, rate_per_s=args.rate,
                                      sample_every_s=args.sample_every_s, warmup_s=args.warmup_s))
        finally:
            stack.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
