"""Fakes of the gateway's downstream services for unit tests of the orchestration (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pickwise_common.breaker import RetryPolicy
from pickwise_common.http import ServiceClient

Handler = Callable[[httpx.Request], httpx.Response]


def item(item_id: str, **overrides: Any) -> dict[str, Any]:
    base = {"item_id": item_id, "title": f"Phone {item_id}", "brand": "samsung", "model": f"galaxy {item_id}",
            "color": "black", "ram_gb": 8, "storage_gb": 128, "price_inr": 15000.0,
            "original_price_inr": 20000.0, "discount_pct": 25.0, "rating": 4.3, "price_band": "mid",
            "group_id": f"g-{item_id}"}
    return base | overrides


def candidates(ids: list[str]) -> list[dict[str, Any]]:
    n = len(ids)
    return [{"item": item(i), "bm25_score": 1.0, "dense_score": 0.5, "fused_score": round(1 - j / (n + 1), 4)}
            for j, i in enumerate(ids)]


@dataclass
class FakeStack:
    """Scripted downstreams; each handler may be replaced by a test. Requests are recorded per target."""

    retrieve_ids: list[str] = field(default_factory=lambda: ["a", "b", "c", "d"])
    parsed: dict[str, Any] = field(default_factory=lambda: {"brands": ["samsung"], "price_max_inr": 20000})
    handlers: dict[str, Handler] = field(default_factory=dict)
    seen: dict[str, list[httpx.Request]] = field(default_factory=dict)

    @staticmethod
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    @staticmethod
    def item(item_id: str, **overrides: Any) -> dict[str, Any]:
        return item(item_id, **overrides)

    def __post_init__(self) -> None:
        self.handlers = {"retriever": self.retriever, "reranker": self.reranker, "generator": self.generator,
                         "session": self.session} | self.handlers

    def retriever(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/retrieve":
            return httpx.Response(404, json={"error": {"code": "not_found", "message": f"no {request.url.path}"}})
        body = json.loads(request.content)
        return httpx.Response(200, json={"query": body["query"], "mode": "hybrid", "parsed": self.parsed,
                                         "candidates": candidates(self.retrieve_ids),
                                         "timings_ms": {"bm25": 1.5, "dense": 3.0}})

    def reranker(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        ranked = list(reversed(body["candidates"]))[: body["k"]]
        return httpx.Response(200, json={"items": [
            {"item": c["item"], "score": 10 - r, "rank": r + 1, "ranker_score": 0.1} for r, c in enumerate(ranked)],
            "features_available": True, "timings_ms": {"ranker": 2.0}})

    def generator(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        picks = [{"item_id": i["item_id"], "why": "fits"} for i in body["items"][:2]]
        return httpx.Response(200, json={"summary": "two good picks", "picks": picks, "provider": "groq",
                                         "model": "llama"})

    def session(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"session_id": "s1", "turns": [
            {"query": "samsung phone", "item_ids": ["a"], "parsed": {"brands": ["samsung"]}}]})

    def client(self, target: str) -> ServiceClient:
        def handle(request: httpx.Request) -> httpx.Response:
            self.seen.setdefault(target, []).append(request)
            return self.handlers[target](request)

        return ServiceClient(caller="gateway-test", target=target, base_url=f"http://{target}.test",
                             timeout_ms=500, retry=RetryPolicy(max_attempts=2, base_delay_ms=1),
                             transport=httpx.MockTransport(handle))

    def clients(self) -> dict[str, ServiceClient]:
        return {t: self.client(t) for t in ("retriever", "reranker", "generator", "session")}


@pytest.fixture
def fakes() -> FakeStack:
    return FakeStack()
