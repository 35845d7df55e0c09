"""The open-loop bench's accounting: accepted, shed (fast 503 overloaded / 429), other 5xx, degraded."""

import json
import random

import httpx
import pytest

from pickwise_pipeline.bench_open_loop import Run, run_rate

pytestmark = pytest.mark.unit


def answer(request: httpx.Request) -> httpx.Response:
    price = int(request.url.params["q"].rsplit(" ", 1)[-1]) // 500
    if price % 4 == 0:
        return httpx.Response(503, json={"error": {"code": "overloaded", "message": "at capacity"}})
    if price % 4 == 1:
        return httpx.Response(503, json={"error": {"code": "dependency_unavailable", "message": "down"}})
    return httpx.Response(200, json={"items": [], "degraded": price % 4 == 2})


async def test_every_request_is_counted_once_in_its_class() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://gw") as client:
        run = await run_rate(client, rate_rps=200, seconds=0.2, queries=["phone"], rng=random.Random(1))
    summary = run.summary()
    assert summary["sent"] == 40
    assert summary["accepted"] + summary["shed"] + summary["other_5xx"] == 40
    assert summary["shed"] > 0 and summary["other_5xx"] > 0 and summary["degraded"] > 0
    assert summary["degraded"] <= summary["accepted"]


def test_empty_run_summarises_to_zeros() -> None:
    assert Run(10).summary()["accepted_p99_ms"] == 0.0


async def test_a_query_stream_sends_each_query_once_on_both_endpoints() -> None:
    seen: list[tuple[str, str]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            seen.append(("search", request.url.params["q"]))
        else:
            seen.append(("recommendations", json.loads(request.content)["query"]))
        return httpx.Response(200, json={"items": [], "degraded": True, "degradation_reasons": ["llm_offline"]})

    stream = iter([f"q{i}" for i in range(30)])
    async with httpx.AsyncClient(transport=httpx.MockTransport(gateway), base_url="http://gw") as client:
        search = await run_rate(client, 200, 0.1, stream, random.Random(1))
        recs = await run_rate(client, 200, 0.1, stream, random.Random(1), endpoint="recommendations")
    assert len({q for _, q in seen}) == len(seen) == 30
    assert search.summary()["sent"] == 20 and recs.summary()["sent"] == 10
    assert recs.summary()["degradation_reasons"] == {"llm_offline": 10}
    assert {e for e, _ in seen} == {"search", "recommendations"}
