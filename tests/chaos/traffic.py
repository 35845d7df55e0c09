"""Steady mixed traffic against a gateway (searches, recommendations, and events with client-made event ids)
and the tally of what came back, by phase. Shared by the chaos suite and `make soak` (tests/chaos/soak.py)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DEV_SET = Path(__file__).resolve().parents[2] / "data" / "eval" / "flipkart_dev.jsonl"
NO_ANSWER = "no answer"  # connection refused, reset or timed out: the client never saw a status
SHED = "overloaded"  # the error code of admission control's fast 503: load shed, not a failed dependency


def dev_queries_and_items() -> tuple[list[str], list[str]]:
    """The dev set's queries, and the catalog items it judges (real ids, so events name known items)."""
    queries: list[str] = []
    items: set[str] = set()
    for line in DEV_SET.read_text().splitlines():
        row = json.loads(line)
        queries.append(row["query"])
        items.update(row["judgments"])
    return queries, sorted(items)


@dataclass
class Tally:
    """What one phase's requests got back."""

    acknowledged: list[str] = field(default_factory=list)  # event ids answered 202
    events: Counter[str] = field(default_factory=Counter)  # status (or NO_ANSWER) -> count
    searches: Counter[str] = field(default_factory=Counter)
    degraded: Counter[str] = field(default_factory=Counter)  # degradation reason -> count
    search_errors: Counter[str] = field(default_factory=Counter)  # "503 retriever_unavailable" -> count

    @property
    def search_5xx(self) -> int:
        """5xx answers to searches other than load shedding: a dependency failure the gateway did not absorb."""
        return sum(n for error, n in self.search_errors.items() if error.startswith("5") and SHED not in error)

    @property
    def shed(self) -> int:
        return sum(n for error, n in self.search_errors.items() if SHED in error)

    def summary(self) -> dict[str, Any]:
        return {"events": dict(self.events), "acknowledged": len(self.acknowledged),
                "searches": dict(self.searches), "search_5xx": self.search_5xx, "shed_503": self.shed,
                "search_errors": dict(self.search_errors), "degraded": dict(self.degraded)}


@dataclass
class Traffic:
    """Open-loop load at fixed rates; a request is skipped (counted, not queued) when ``max_in_flight`` are
    already waiting, so a stalled stack does not pile up a backlog that outlives the fault."""

    gateway_url: str
    api_key: str
    events_per_s: float
    searches_per_s: float
    recommendations_per_s: float = 0.0
    items: list[str] = field(default_factory=list)  # item ids for events; default: the dev set's judged items
    max_in_flight: int = 48
    timeout_s: float = 10.0
    phase: str = "start"
    tallies: dict[str, Tally] = field(default_factory=dict)
    skipped: int = 0
    acked_ids: set[str] = field(default_factory=set)
    acked_at: dict[str, float] = field(default_factory=dict)  # event id -> time.monotonic() of its 202
    _in_flight: int = 0

    def __post_init__(self) -> None:
        self.queries, judged = dev_queries_and_items()
        self.items = self.items or judged
        self._random = random.Random(14)

    def tally(self, phase: str | None = None) -> Tally:
        return self.tallies.setdefault(phase or self.phase, Tally())

    async def run(self, stop: asyncio.Event) -> None:
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=16)
        async with httpx.AsyncClient(base_url=self.gateway_url, headers={"X-API-Key": self.api_key},
                                     timeout=self.timeout_s, limits=limits) as client:
            tickers = [self._ticker(client, stop, rate, send) for rate, send in (
                (self.events_per_s, self._event), (self.searches_per_s, self._search),
                (self.recommendations_per_s, self._recommendation)) if rate > 0]
            await asyncio.gather(*tickers)  # each ticker waits for the requests it sent

    async def _ticker(self, client: httpx.AsyncClient, stop: asyncio.Event, rate_per_s: float, send: Any) -> None:
        interval_s = 1.0 / rate_per_s
        next_at = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            if self._in_flight >= self.max_in_flight:
                self.skipped += 1
            else:
                task = asyncio.create_task(self._tracked(send(client, self.phase)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            next_at += interval_s
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if tasks:
            await asyncio.gather(*tasks)

    async def _tracked(self, request: Any) -> None:
        self._in_flight += 1
        try:
            await request
        finally:
            self._in_flight -= 1

    async def _event(self, client: httpx.AsyncClient, phase: str) -> None:
        event_id = str(uuid.uuid4())
        body = {"event_id": event_id, "type": self._random.choice(["view", "click", "click", "add_to_cart"]),
                "user_id": f"chaos-u{self._random.randrange(200)}", "item_id": self._random.choice(self.items)}
        status = await _status(client.post("/v1/events", json=body))
        tally = self.tally(phase)
        tally.events[status] += 1
        if status == "202":
            tally.acknowledged.append(event_id)
            self.acked_ids.add(event_id)
            self.acked_at[event_id] = time.monotonic()

    async def _search(self, client: httpx.AsyncClient, phase: str) -> None:
        params = {"q": self._random.choice(self.queries), "k": 10, "user_id": f"chaos-u{self._random.randrange(200)}"}
        await self._answer(client.get("/v1/search", params=params), phase)

    async def _recommendation(self, client: httpx.AsyncClient, phase: str) -> None:
        user = self._random.randrange(200)
        body = {"query": self._random.choice(self.queries), "k": 5, "user_id": f"chaos-u{user}",
                "session_id": f"chaos-s{user}"}
        await self._answer(client.post("/v1/recommendations", json=body), phase)

    async def _answer(self, request: Any, phase: str) -> None:
        tally = self.tally(phase)
        try:
            response = await request
        except httpx.HTTPError:
            tally.searches[NO_ANSWER] += 1
            return
        tally.searches[str(response.status_code)] += 1
        if response.status_code == 200:
            for reason in response.json().get("degradation_reasons", []):
                tally.degraded[reason] += 1
        else:
            tally.search_errors[f"{response.status_code} {_error_code(response)}"] += 1


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "?"


async def _status(request: Any) -> str:
    try:
        return str((await request).status_code)
    except httpx.HTTPError:
        return NO_ANSWER
