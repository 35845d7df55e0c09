"""Cost of the gateway's popularity fallback tiers (decision 0807) against a throw-away redis-server: the
168 hourly keys of a 7-day tier read one by one and summed in the gateway, against the ZUNIONSTORE it
replaced (which Redis Cluster refuses across slots), and the whole walk for k=10:

    .venv/bin/python services/gateway/bench/popularity_fallback.py --hours 168 --per-hour 300 --runs 50

Fills a retail catalog's hourly keys with Pareto-distributed clicks over 3,796 items, checks that both ways
give the same sums rank by rank, and prints p50/p90 of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from pickwise_common import redis as rd
from pickwise_common.launcher.infra import redis_binary
from pickwise_gateway import popularity

CATALOG = "retail"
NOW = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fill(client: aioredis.Redis, hours: int, per_hour: int, n_items: int) -> list[str]:
    rng = random.Random(1)
    ids = [f"or-{i:05d}" for i in range(n_items)]
    pipe = client.pipeline(transaction=False)
    for item_id in ids:
        pipe.hset(rd.item_key(item_id, CATALOG), "json", json.dumps(
            {"item_id": item_id, "catalog": CATALOG, "title": item_id, "price": 2.5, "currency": "GBP"}))
    for hour in range(hours):
        clicks: dict[str, float] = {}
        for _ in range(per_hour):
            item_id = ids[min(int(rng.paretovariate(1.1)) - 1, n_items - 1)]
            clicks[item_id] = clicks.get(item_id, 0.0) + 1.0
        pipe.zadd(rd.popularity_hour_key(NOW - timedelta(hours=hour), CATALOG), clicks)
    await pipe.execute()
    return popularity.hour_keys(NOW, hours, CATALOG)


async def timed(name: str, call: Callable[[], Awaitable[Any]], runs: int) -> None:
    for _ in range(5):
        await call()
    times_ms = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times_ms.append((time.perf_counter() - started) * 1000)
    times_ms.sort()
    print(f"{name}: p50 {statistics.median(times_ms):.1f} ms, p90 {times_ms[int(0.9 * (runs - 1))]:.1f} ms "
          f"({runs} runs)")


async def run(args: argparse.Namespace, port: int) -> None:
    client = aioredis.Redis(port=port, decode_responses=True)
    try:
        for _ in range(100):
            try:
                await client.ping()
                break
            except OSError:
                await asyncio.sleep(0.05)
        keys = await fill(client, args.hours, args.per_hour, args.items)

        async def union() -> list[tuple[str, float]]:
            pipe = client.pipeline(transaction=False)
            pipe.zunionstore("bench:union", keys)
            pipe.zrevrange("bench:union", 0, popularity.PER_TIER_TOP - 1, withscores=True)
            return [(m, float(s)) for m, s in (await pipe.execute())[-1]]

        summed, unioned = await popularity._summed(client, keys), await union()
        # ids of equal sums may come in another order (and differ at the cut), so the sums are compared rank by rank
        print(f"{len(keys)} keys, {sum([await client.zcard(k) for k in keys])} members; the same sum at each of "
              f"the top {len(summed)} ranks as ZUNIONSTORE: {[s for _, s in summed] == [s for _, s in unioned]}")
        await timed("per-key reads summed in the gateway", lambda: popularity._summed(client, keys), args.runs)
        await timed("ZUNIONSTORE (single Redis only)", union, args.runs)
        await timed("popular_items k=10 (whole walk)",
                    lambda: popularity.popular_items(client, 10, now=NOW, catalog=CATALOG), args.runs)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--per-hour", type=int, default=300, help="clicks per hour")
    parser.add_argument("--items", type=int, default=3796)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([str(redis_binary()), "--port", str(port), "--save", "", "--dir", tempfile.mkdtemp()],
                              stdout=subprocess.DEVNULL)
    try:
        asyncio.run(run(args, port))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
