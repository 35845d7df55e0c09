"""Event-path benchmarks against a running stack (``make run``):

``bench-click``: a fresh user searches, clicks the result at ``--position`` (7th by default), then repeats
the search until that model is in their top 3 with its click boost; the delay from sending the click to
the first response showing it, over ``--trials`` users (p50/p90/p99).

``bench-events``: sustained ingestion through the gateway for ``--seconds``: single ``POST /v1/events``
at ``--concurrency``, or ``POST /v1/events:batch`` of ``--batch-size``; acknowledged events per second,
503s, latency; with ``--consumer-url`` also how long the event-consumer takes to apply them all.

The gateway's per-key rate limit (``PICKWISE_RATE_LIMIT_PER_MINUTE``) applies: raise it for bench-events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from pickwise_client import AsyncClient, PickwiseAPIError, ResultItem, ServiceUnavailable
from pickwise_pipeline.bench import StackCpu
from pickwise_pipeline.progress import Progress

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
DEFAULT_CONSUMER_URL = "http://127.0.0.1:8005"


def _default_key() -> str:
    keys = [k.strip() for k in os.environ.get("PICKWISE_API_KEYS", "dev-local-key").split(",") if k.strip()]
    return keys[0] if keys else "dev-local-key"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(values_s: list[float]) -> dict[str, float]:
    if not values_s:
        return {}
    ms = [v * 1000 for v in values_s]
    return {"p50": round(percentile(ms, 50), 1), "p90": round(percentile(ms, 90), 1),
            "p99": round(percentile(ms, 99), 1), "max": round(max(ms), 1), "mean": round(statistics.fmean(ms), 1)}


# ---------------------------------------------------------------- bench-click

def _visible(items: list[ResultItem], item_id: str) -> bool:
    for item in items[:3]:
        if (item.item_id == item_id or item_id in item.variant_ids) and item.boost is not None and item.boost.clicked:
            return True
    return False


async def _search(client: AsyncClient, query: str, user: str) -> list[ResultItem]:
    return (await client.recommendations(query, k=10, user_id=user, generate=False, explain=True)).items


async def click_trial(client: AsyncClient, query: str, position: int, timeout_s: float) -> dict[str, Any]:
    user = f"bench-click-{uuid.uuid4().hex[:12]}"
    body = await client.recommendations(query, k=10, user_id=user, generate=False, explain=True)
    items, variant = body.items, body.variant
    if len(items) < position:
        return {"ok": False, "reason": f"only {len(items)} results", "variant": variant}
    item_id = items[position - 1].item_id
    sent = time.perf_counter()
    try:
        await client.click(user, item_id, position=position - 1, source="search")
    except PickwiseAPIError as exc:
        return {"ok": False, "reason": f"click answered {exc.status_code}", "variant": variant}
    acked = time.perf_counter()
    searches = 0
    search_s: list[float] = []
    while time.perf_counter() - sent < timeout_s:
        started = time.perf_counter()
        items = await _search(client, query, user)
        search_s.append(time.perf_counter() - started)
        searches += 1
        if _visible(items, item_id):
            return {"ok": True, "delay_s": time.perf_counter() - sent, "ack_s": acked - sent, "searches": searches,
                    "search_s": statistics.fmean(search_s), "variant": variant}
    best = min((i.rank for i in items if i.item_id == item_id or item_id in i.variant_ids), default=None)
    return {"ok": False, "reason": "not in the top 3 within the timeout", "searches": searches,
            "variant": variant, "final_rank": best}


async def run_click_bench(args: argparse.Namespace) -> dict[str, Any]:
    async with AsyncClient(args.gateway_url, api_key=args.api_key, timeout_s=args.timeout_s) as client:
        trials = []
        with Progress("bench-click", total=args.trials, unit="trials", quiet=args.quiet) as progress:
            for _ in range(args.trials):
                trials.append(await click_trial(client, args.query, args.position, args.timeout_s))
                progress.update()
    ok = [t for t in trials if t["ok"]]
    failures: dict[str, int] = {}
    for t in trials:
        if not t["ok"]:
            failures[t["reason"]] = failures.get(t["reason"], 0) + 1
    by_variant: dict[str, dict[str, int]] = {}
    for t in trials:
        row = by_variant.setdefault(str(t.get("variant")), {"trials": 0, "visible": 0})
        row["trials"] += 1
        row["visible"] += int(t["ok"])
    return {"benchmark": "click_to_visible", "query": args.query, "position": args.position,
            "trials": len(trials), "visible": len(ok), "failures": failures, "by_variant": by_variant,
            "final_rank_when_not_visible": sorted(t["final_rank"] for t in trials
                                                  if not t["ok"] and t.get("final_rank") is not None),
            "click_to_visible_ms": summary_ms([t["delay_s"] for t in ok]),
            # every visible trial's delay, in trial order (make report draws their distribution)
            "click_to_visible_ms_all": [round(t["delay_s"] * 1000, 1) for t in ok],
            "click_ack_ms": summary_ms([t["ack_s"] for t in ok]),
            "search_ms_mean": round(statistics.fmean(t["search_s"] for t in ok) * 1000, 1) if ok else None,
            "searches_per_trial_mean": round(statistics.fmean(t["searches"] for t in ok), 2) if ok else None}


# ---------------------------------------------------------------- bench-events

async def _processed(client: httpx.AsyncClient, consumer_url: str) -> dict[str, float]:
    """The consumer's interaction events by outcome (``applied``: stored once; ``duplicate``: an event id
    seen before, e.g. a producer retry; others: invalid/dead-lettered)."""
    text = (await client.get(consumer_url + "/metrics")).text
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r'^pickwise_events_processed_total\{(.*)\} ([0-9.e+]+)$', line)
        if match and 'topic="events.interactions"' in match.group(1):
            outcome = re.search(r'outcome="([^"]*)"', match.group(1))
            key = outcome.group(1) if outcome else "all"
            totals[key] = totals.get(key, 0.0) + float(match.group(2))
    return totals


async def run_events_bench(args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    counts = {"accepted": 0, "unavailable": 0, "other": 0}
    stop_at = time.perf_counter() + args.seconds
    limits = httpx.Limits(max_connections=args.concurrency + 4, max_keepalive_connections=args.concurrency + 4)
    async with AsyncClient(args.gateway_url, api_key=args.api_key, timeout_s=args.timeout_s,
                           limits=limits) as client:
        before = await _processed(client.http, args.consumer_url) if args.consumer_url else None
        cpu = StackCpu(args.gateway_url, client.http)
        await cpu.start()

        def event(worker: int, n: int) -> dict[str, Any]:
            return {"type": "view" if n % 5 else "click", "user_id": f"bench-ev-{worker}-{n % 50}",
                    # catalog ids (fm-00001 ...): the gateway refuses events about items it does not hold
                    "item_id": f"fm-{n % 997 + 1:05d}", "source": "feed"}

        async def worker(w: int) -> None:
            n = 0
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                if args.mode == "batch":
                    batch = [event(w, n + i) for i in range(args.batch_size)]
                    n += args.batch_size
                    try:
                        got = await client.events_batch(batch)  # 202 or 207
                        counts["accepted"] += got.accepted
                        counts["unavailable"] += got.unavailable
                    except ServiceUnavailable:
                        counts["unavailable"] += args.batch_size
                    except PickwiseAPIError:
                        counts["other"] += args.batch_size
                else:
                    single = event(w, n)
                    n += 1
                    try:
                        await client.event(single)
                        counts["accepted"] += 1
                    except ServiceUnavailable:
                        counts["unavailable"] += 1
                    except PickwiseAPIError:
                        counts["other"] += 1
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        elapsed = time.perf_counter() - began
        report: dict[str, Any] = {
            "benchmark": "event_ingestion", "mode": args.mode, "concurrency": args.concurrency,
            "batch_size": args.batch_size if args.mode == "batch" else 1, "seconds": round(elapsed, 2),
            "accepted": counts["accepted"], "unavailable": counts["unavailable"], "other": counts["other"],
            "accepted_per_s": round(counts["accepted"] / elapsed, 1),
            "request_latency_ms": summary_ms(latencies)}
        if before is not None:
            # every acknowledged event must be applied once (the consumer stores each event id once)
            target = before.get("applied", 0.0) + counts["accepted"]
            now = before
            deadline = time.perf_counter() + 300
            while time.perf_counter() < deadline:
                now = await _processed(client.http, args.consumer_url)
                if now.get("applied", 0.0) >= target:
                    break
                await asyncio.sleep(0.2)
            drained = time.perf_counter() - began
            report["consumer_outcomes"] = {k: int(v - before.get(k, 0.0)) for k, v in sorted(now.items())}
            report["consumer_caught_up_after_s"] = round(drained, 2)
            report["consumer_applied_per_s"] = round(counts["accepted"] / drained, 1)
        # from the start to the consumer having applied them all (or the send phase, without a consumer URL)
        report["cpu_ms_per_event"] = await cpu.per_request(counts["accepted"])
    return report


def _print(report: dict[str, Any]) -> None:
    print(json.dumps(report, indent=2))


def click_command(args: argparse.Namespace) -> int:
    report = asyncio.run(run_click_bench(args))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print(report)
    return 0 if report["visible"] else 1


def events_command(args: argparse.Namespace) -> int:
    report = asyncio.run(run_events_bench(args))
    _print(report)
    return 0 if report["accepted"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    click = subparsers.add_parser("bench-click", help="click -> visible-in-ranking delay over the running stack",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    click.add_argument("--gateway-url", default=os.environ.get("PICKWISE_GATEWAY_URL", DEFAULT_GATEWAY_URL))
    click.add_argument("--api-key", default=_default_key(), help="default: first of PICKWISE_API_KEYS")
    click.add_argument("--trials", type=int, default=100)
    click.add_argument("--query", default="phone under 20000")
    click.add_argument("--position", type=int, default=7, help="1-based rank of the result clicked")
    click.add_argument("--timeout-s", type=float, default=10.0, help="give up on a trial after this long")
    click.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    click.add_argument("--out", type=Path, help="also write the JSON report to this file (make bench-click: "
                                                ".pickwise/reports/bench-click.json, read by make report)")
    click.set_defaults(func=click_command)

    events = subparsers.add_parser("bench-events", help="sustained event ingestion through the gateway",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    events.add_argument("--gateway-url", default=os.environ.get("PICKWISE_GATEWAY_URL", DEFAULT_GATEWAY_URL))
    events.add_argument("--api-key", default=_default_key())
    events.add_argument("--mode", choices=("single", "batch"), default="single")
    events.add_argument("--concurrency", type=int, default=32)
    events.add_argument("--batch-size", type=int, default=100)
    events.add_argument("--seconds", type=float, default=20.0)
    events.add_argument("--timeout-s", type=float, default=10.0)
    events.add_argument("--consumer-url", default=None,
                        help=f"event-consumer base URL (e.g. {DEFAULT_CONSUMER_URL}): also time the apply side")
    events.set_defaults(func=events_command)
