"""``bench-cf-feed``: purchase -> feed-changed delay over a running stack (``make run`` with a CF model trained
for the catalog, ``pickwise-pipeline train-cf --catalog retail``).

Each trial: a fresh user reads their feed (``GET /v1/users/{id}/recommendations?catalog=``, cold start; with
``--history N`` the user first buys N items and waits until the feed shows them, a returning customer), buys
an item that feed does not show (``POST /v1/events`` type purchase), then reads the feed again until it
differs; the delay from sending the purchase to the first changed feed, over ``--trials`` users
(p50/p90/p99). The purchase travels gateway -> broker -> event-consumer (history hash in Redis) -> retriever
(fold-in at request time): no retraining. Target: p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from pickwise_pipeline.bench_click import DEFAULT_GATEWAY_URL, _default_key, summary_ms
from pickwise_pipeline.progress import Progress


def feed_signature(body: dict[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """What "the feed changed" compares: cold start and the ordered item ids."""
    return bool(body.get("cold_start")), tuple(i["item"]["item_id"] for i in body.get("items", []))


async def _feed(client: httpx.AsyncClient, user: str, catalog: str, k: int) -> dict[str, Any]:
    response = await client.get(f"/v1/users/{user}/recommendations", params={"catalog": catalog, "k": k})
    response.raise_for_status()
    return response.json()


async def _purchase(client: httpx.AsyncClient, user: str, item_id: str, catalog: str) -> int:
    response = await client.post("/v1/events", json={"type": "purchase", "user_id": user, "item_id": item_id,
                                                      "catalog": catalog, "quantity": 1})
    return response.status_code


async def _with_history(client: httpx.AsyncClient, user: str, catalog: str, k: int, items: list[str],
                        timeout_s: float) -> dict[str, Any] | None:
    """Buy ``items`` (not timed) and wait until the feed holds all of them: the consumer has applied them."""
    for item_id in items:
        if await _purchase(client, user, item_id, catalog) != 202:
            return None
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        body = await _feed(client, user, catalog, k)
        if set(items) <= set(feed_signature(body)[1]):
            return body
        await asyncio.sleep(0.05)
    return None


async def trial(client: httpx.AsyncClient, catalog: str, k: int, candidates: list[str], n: int,
                timeout_s: float, history: int = 0) -> dict[str, Any]:
    user = f"bench-cf-{uuid.uuid4().hex[:12]}"
    if history:
        bought = [candidates[(n * history + j) % len(candidates)] for j in range(history)]
        settled = await _with_history(client, user, catalog, k, bought, timeout_s)
        if settled is None:
            return {"ok": False, "reason": "the history purchases never showed in the feed"}
        before = settled
    else:
        before = await _feed(client, user, catalog, k)
    shown = set(feed_signature(before)[1])
    choices = [c for c in candidates if c not in shown]
    if not choices:
        return {"ok": False, "reason": "no item outside the feed to buy"}
    item_id = choices[n % len(choices)]
    sent = time.perf_counter()
    status = await _purchase(client, user, item_id, catalog)
    if status != 202:
        return {"ok": False, "reason": f"purchase answered {status}"}
    acked = time.perf_counter()
    polls = 0
    feed_s: list[float] = []
    while time.perf_counter() - sent < timeout_s:
        started = time.perf_counter()
        body = await _feed(client, user, catalog, k)
        feed_s.append(time.perf_counter() - started)
        polls += 1
        if feed_signature(body) != feed_signature(before):
            return {"ok": True, "delay_s": time.perf_counter() - sent, "ack_s": acked - sent, "polls": polls,
                    "feed_s": statistics.fmean(feed_s), "bought_in_feed": item_id in feed_signature(body)[1],
                    "model_version": body.get("model_version")}
    return {"ok": False, "reason": "feed unchanged within the timeout", "polls": polls}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=args.gateway_url, headers={"X-API-Key": args.api_key},
                                 timeout=args.timeout_s) as client:
        popular = await client.get("/v1/popular", params={"catalog": args.catalog, "k": 50})
        popular.raise_for_status()
        candidates = [c["item"]["item_id"] for c in popular.json()["candidates"]]
        trials = []
        with Progress("bench-cf-feed", total=args.trials, unit="trials", quiet=args.quiet) as progress:
            for n in range(args.trials):
                trials.append(await trial(client, args.catalog, args.k, candidates, n, args.timeout_s,
                                          args.history))
                progress.update()
    ok = [t for t in trials if t["ok"]]
    failures: dict[str, int] = {}
    for t in trials:
        if not t["ok"]:
            failures[t["reason"]] = failures.get(t["reason"], 0) + 1
    return {"benchmark": "purchase_to_feed_changed", "catalog": args.catalog, "k": args.k, "history": args.history,
            "trials": len(trials), "changed": len(ok), "failures": failures,
            "model_versions": sorted({str(t.get("model_version")) for t in ok}),
            "bought_item_in_feed": sum(1 for t in ok if t["bought_in_feed"]),
            "purchase_to_feed_changed_ms": summary_ms([t["delay_s"] for t in ok]),
            "purchase_to_feed_changed_ms_all": [round(t["delay_s"] * 1000, 1) for t in ok],
            "purchase_ack_ms": summary_ms([t["ack_s"] for t in ok]),
            "feed_ms_mean": round(statistics.fmean(t["feed_s"] for t in ok) * 1000, 1) if ok else None,
            "polls_per_trial_mean": round(statistics.fmean(t["polls"] for t in ok), 2) if ok else None}


def command(args: argparse.Namespace) -> int:
    report = asyncio.run(run(args))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("_all")}, indent=2))
    return 0 if report["changed"] == report["trials"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("bench-cf-feed", help="purchase -> feed-changed delay over the running stack",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway-url", default=os.environ.get("PICKWISE_GATEWAY_URL", DEFAULT_GATEWAY_URL))
    parser.add_argument("--api-key", default=_default_key(), help="default: first of PICKWISE_API_KEYS")
    parser.add_argument("--catalog", default="retail")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--k", type=int, default=10, help="feed length compared")
    parser.add_argument("--history", type=int, default=0,
                        help="purchases each user makes (untimed) before the timed one: a returning customer")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="give up on a trial after this long")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", type=Path, help="also write the JSON report (with every trial's delay) here")
    parser.set_defaults(func=command)
