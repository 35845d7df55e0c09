"""``pickwise-pipeline simulate``: synthetic shoppers with hidden preferences search through the REAL gateway,
look through the results with a position-biased click model and post click / add_to_cart / purchase events
carrying the response's request_id (decision 1007). The truth (each shopper's preferences, queries, request ids
and what they did) goes to ``<out>/truth.jsonl``; counts, CTR per variant and per ranker version to
``<out>/summary.json``.

    pickwise-pipeline simulate --gateway http://127.0.0.1:8000 --sessions 2000 --rate 20 --seed 7 \\
        --out .pickwise/sim

Only a loopback gateway is accepted (a simulator must never load a shared or production deployment), the
number of sessions is bounded and every HTTP call takes a token from a bucket refilled at ``--rate`` per second.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pickwise_common.errors import InvalidInput
from pickwise_common.schemas import Item
from pickwise_common.settings import default_data_root
from pickwise_pipeline import catalog as catalog_io
from pickwise_pipeline.click_model import ClickModel, browse, expected_utility
from pickwise_pipeline.progress import Progress, summary_line
from pickwise_pipeline.shoppers import Shopper, draw_shopper, grade, session_queries, smartphones, utility

log = logging.getLogger("pickwise.pipeline.simulate")

MAX_SESSIONS = 100_000
MAX_RATE_PER_S = 200.0
PAGE_SIZE = 10
NO_RANKER = "none"  # the ranker version of a response that did not say (before model_versions existed)


def require_loopback(url: str) -> str:
    """The URL when its host is a loopback address or ``localhost``; InvalidInput naming ``gateway`` otherwise."""
    host = urlsplit(url).hostname or ""
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise InvalidInput(f"the simulator only drives a loopback gateway, not {host or url!r}",
                           fields=[{"field": "gateway", "message": "host must be 127.0.0.0/8, ::1 or localhost"}])
    return url.rstrip("/")


def check_bounds(sessions: int, rate_per_s: float) -> None:
    if not 1 <= sessions <= MAX_SESSIONS:
        raise InvalidInput(f"--sessions must be 1..{MAX_SESSIONS}",
                           fields=[{"field": "sessions", "message": "out of range"}])
    if not 0 < rate_per_s <= MAX_RATE_PER_S:
        raise InvalidInput(f"--rate must be in (0, {MAX_RATE_PER_S:g}] requests/s",
                           fields=[{"field": "rate", "message": "out of range"}])


class TokenBucket:
    """Thread-safe: ``take()`` blocks until a token is there; ``rate_per_s`` tokens a second, ``burst`` at most."""

    def __init__(self, rate_per_s: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst if burst is not None else max(1.0, rate_per_s / 10)
        self._tokens = self.burst
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
                self._last = now
                if self._tokens >= 1.0 - 1e-9:  # float dust must not turn one wait into endless tiny ones
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                wait_s = (1.0 - self._tokens) / self.rate_per_s
            self._sleep(wait_s)


@dataclass
class PageRecord:
    query: str
    request_id: str
    variant: str
    ranker: str
    shown: list[str]
    utilities: list[float]
    actions: list[dict[str, Any]] = field(default_factory=list)
    parsed: dict[str, Any] = field(default_factory=dict)  # what the system understood of the query

    def as_dict(self) -> dict[str, Any]:
        return {"query": self.query, "request_id": self.request_id, "variant": self.variant, "ranker": self.ranker,
                "shown": self.shown, "utilities": [round(u, 4) for u in self.utilities],
                "grades": [grade(u) for u in self.utilities], "actions": self.actions, "parsed": self.parsed}


@dataclass
class SessionRecord:
    shopper: Shopper
    session_id: str
    pages: list[PageRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"user_id": self.shopper.user_id, "session_id": self.session_id,
                "preferences": self.shopper.as_dict(), "queries": [p.as_dict() for p in self.pages],
                "errors": self.errors}


class Gateway:
    """The few calls the simulator makes, through pickwise-client, each after a token from the bucket; a 429 or
    503 is retried after its Retry-After (at most 3 times)."""

    def __init__(self, base_url: str, api_key: str | None, bucket: TokenBucket, timeout_s: float = 30.0) -> None:
        from pickwise_client import Client

        self.client = Client(base_url, api_key=api_key, timeout_s=timeout_s)
        self.bucket = bucket

    def _call(self, fn: Callable[[], Any]) -> Any:
        from pickwise_client.errors import RateLimited, ServiceUnavailable

        for attempt in range(4):
            self.bucket.take()
            try:
                return fn()
            except (RateLimited, ServiceUnavailable) as exc:
                if attempt == 3:
                    raise
                time.sleep(min(10.0, exc.retry_after_s or 1.0))
        raise AssertionError("unreachable")

    def search(self, query: str, user_id: str, session_id: str) -> Any:
        return self._call(lambda: self.client.search(query, k=PAGE_SIZE, user_id=user_id, session_id=session_id))

    def event(self, body: dict[str, Any]) -> None:
        self._call(lambda: self.client.event(body))

    def close(self) -> None:
        self.client.close()


def ranker_version(response: Any) -> str:
    """``model_versions["ranker"]`` of a search response (the gateway adds it, decision 1000), else ``none``."""
    versions = getattr(response, "model_versions", None)
    if versions is None and getattr(response, "model_extra", None):
        versions = response.model_extra.get("model_versions")
    if isinstance(versions, Mapping) and versions.get("ranker"):
        return str(versions["ranker"])
    return NO_RANKER


def run_session(n: int, seed: int, anchors: Sequence[Item], items: Mapping[str, Item], gateway: Gateway,
                model: ClickModel) -> SessionRecord:
    """One shopper: 1..3 queries, each page browsed with the click model, events posted; a purchase ends it."""
    rng = random.Random(f"{seed}:{n}")
    shopper = draw_shopper(f"sim-{seed}-{n}", anchors, rng)
    record = SessionRecord(shopper, session_id=f"sim-{seed}-{n}-s")
    for query in session_queries(shopper, rng):
        try:
            response = gateway.search(query, shopper.user_id, record.session_id)
        except Exception as exc:  # noqa: BLE001 - recorded in the truth and counted in the summary
            record.errors.append(f"search: {type(exc).__name__}: {exc}"[:300])
            continue
        shown = [i.item_id for i in response.items]
        utilities = [utility(shopper, items[i]) if i in items else 0.0 for i in shown]
        page = PageRecord(query, response.request_id, response.variant, ranker_version(response), shown, utilities,
                          parsed=response.parsed.model_dump(mode="json", exclude_defaults=True))
        record.pages.append(page)
        bought = False
        for act in browse(utilities, rng, model):
            body = {"event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "type": act.action,
                    "user_id": shopper.user_id, "item_id": shown[act.position], "session_id": record.session_id,
                    "request_id": response.request_id, "position": act.position, "source": "search"}
            try:
                gateway.event(body)
            except Exception as exc:  # noqa: BLE001 - recorded in the truth and counted in the summary
                record.errors.append(f"event: {type(exc).__name__}: {exc}"[:300])
                continue
            page.actions.append({"position": act.position, "item_id": shown[act.position], "type": act.action,
                                 "event_id": body["event_id"]})
            bought = bought or act.action == "purchase"
        if bought:
            break
    return record


def summarise(records: Sequence[SessionRecord], wall_s: float, model: ClickModel) -> dict[str, Any]:
    """Counts, and per response variant and per ranker version: searches, CTR (share of pages with a click),
    clicks and purchases per search, and the examination-weighted true utility of the pages shown."""
    totals: Counter[str] = Counter()
    groups: dict[str, dict[str, Counter[str]]] = {"by_variant": defaultdict(Counter), "by_ranker": defaultdict(Counter)}
    utility_sums: dict[str, dict[str, float]] = {"by_variant": defaultdict(float), "by_ranker": defaultdict(float)}
    for record in records:
        totals["sessions"] += 1
        totals["errors"] += len(record.errors)
        for page in record.pages:
            kinds = Counter(a["type"] for a in page.actions)
            page_counts = {"searches": 1, "clicked_searches": int(kinds["click"] > 0), "clicks": kinds["click"],
                           "add_to_carts": kinds["add_to_cart"], "purchases": kinds["purchase"]}
            totals.update(page_counts)
            for name, key in (("by_variant", page.variant), ("by_ranker", page.ranker)):
                groups[name][key].update(page_counts)
                utility_sums[name][key] += expected_utility(page.utilities, model)
    out: dict[str, Any] = {"sessions": totals["sessions"], "searches": totals["searches"], "clicks": totals["clicks"],
                           "add_to_carts": totals["add_to_carts"], "purchases": totals["purchases"],
                           "errors": totals["errors"], "wall_s": round(wall_s, 1), "click_model": model.as_dict()}
    for name, by_key in groups.items():
        out[name] = {key: _rates(c, utility_sums[name][key]) for key, c in sorted(by_key.items())}
    out["ctr"] = round(totals["clicked_searches"] / totals["searches"], 4) if totals["searches"] else 0.0
    return out


def _rates(c: Counter[str], utility_sum: float) -> dict[str, Any]:
    n = c["searches"]
    return {"searches": n, "clicks": c["clicks"], "purchases": c["purchases"],
            "ctr": round(c["clicked_searches"] / n, 4) if n else 0.0,
            "clicks_per_search": round(c["clicks"] / n, 4) if n else 0.0,
            "purchases_per_search": round(c["purchases"] / n, 4) if n else 0.0,
            "expected_true_utility": round(utility_sum / n, 4) if n else 0.0}


def load_items(catalog_csv: Path) -> list[Item]:
    return catalog_io.normalise(catalog_io.read_rows(catalog_csv)).items


def simulate(*, gateway_url: str, sessions: int, rate_per_s: float, seed: int, out_dir: Path,
             api_key: str | None, catalog_csv: Path, concurrency: int = 4,
             model: ClickModel = ClickModel()) -> dict[str, Any]:
    url = require_loopback(gateway_url)
    check_bounds(sessions, rate_per_s)
    items = load_items(catalog_csv)
    by_id = {i.item_id: i for i in items}
    anchors = smartphones(items)
    out_dir.mkdir(parents=True, exist_ok=True)
    gateway = Gateway(url, api_key, TokenBucket(rate_per_s))
    started = time.perf_counter()
    records: list[SessionRecord] = []
    try:
        with Progress("simulate", total=sessions, unit="sessions", summary=False) as progress, \
                ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool, \
                (out_dir / "truth.jsonl").open("w", encoding="utf-8") as truth:
            futures = [pool.submit(run_session, n, seed, anchors, by_id, gateway, model) for n in range(sessions)]
            for future in futures:
                record = future.result()
                records.append(record)
                truth.write(json.dumps(record.as_dict()) + "\n")
                progress.update()
    finally:
        gateway.close()
    wall_s = time.perf_counter() - started
    summary = summarise(records, wall_s, model) | {"seed": seed, "rate_per_s": rate_per_s, "gateway": url}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        summary = simulate(gateway_url=args.gateway, sessions=args.sessions, rate_per_s=args.rate, seed=args.seed,
                           out_dir=Path(args.out), api_key=args.api_key, catalog_csv=Path(args.catalog_csv),
                           concurrency=args.concurrency)
    except InvalidInput as exc:
        print(f"simulate: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    # a row is one search a simulated shopper made
    print(summary_line("simulate", summary["searches"], summary["wall_s"]), file=sys.stderr, flush=True)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("simulate", help="simulated shoppers search and click through a local gateway",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default=os.environ.get("PICKWISE_GATEWAY_URL", "http://127.0.0.1:8000"),
                        help="loopback gateway base URL (default: $PICKWISE_GATEWAY_URL or %(default)s)")
    parser.add_argument("--sessions", type=int, default=100, help=f"shoppers, 1..{MAX_SESSIONS} (default %(default)s)")
    parser.add_argument("--rate", type=float, default=20.0, help="HTTP requests per second, at most "
                        f"{MAX_RATE_PER_S:g} (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=4, help="shoppers browsing at once (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=".pickwise/sim", help="truth.jsonl and summary.json go here")
    parser.add_argument("--api-key", default=os.environ.get("PICKWISE_API_KEY", "dev-local-key"))
    parser.add_argument("--catalog-csv", default=str(default_data_root() / "flipkart_mobiles.csv"),
                        help="the catalog the gateway serves (shoppers' preferences and true utility come from it)")
    parser.set_defaults(func=run)
