"""Admission control: bounded in-flight requests, a bounded queue with a timeout, fast 503s past it."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from pickwise_common import admission
from pickwise_common.app import service_app
from pickwise_common.settings import ServiceSettings

pytestmark = pytest.mark.unit


def slow_app(release: asyncio.Event, **settings) -> FastAPI:
    app = service_app("unit", ServiceSettings(service_name="unit", **settings), admission_exempt=("/v1/cheap",))

    @app.get("/v1/slow")
    async def slow() -> dict:
        await release.wait()
        return {"queued_ms": admission.queued_ms()}

    @app.get("/v1/cheap")
    async def cheap() -> dict:
        return {}

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_past_slots_and_queue_requests_are_refused_fast_with_retry_after() -> None:
    release = asyncio.Event()
    app = slow_app(release, admission_max_in_flight=2, admission_queue_max=1, admission_queue_timeout_ms=60_000)
    async with client(app) as c:
        held = [asyncio.create_task(c.get("/v1/slow")) for _ in range(3)]  # 2 in flight, 1 queued
        await asyncio.sleep(0.05)
        refused = await c.get("/v1/slow")
        health = await c.get("/healthz")
        cheap = await c.get("/v1/cheap")
        release.set()
        done = await asyncio.gather(*held)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["x-request-id"]
    assert health.status_code == 200 and cheap.status_code == 200, "health and exempt paths are never queued"
    assert [r.status_code for r in done] == [200, 200, 200]


async def test_a_request_that_waits_past_the_queue_timeout_is_refused() -> None:
    gate = admission.Admission("unit", max_in_flight=1, queue_max=5, queue_timeout_ms=10)
    await gate.acquire()
    with pytest.raises(admission.Overloaded):
        await gate.acquire()
    gate.release()
    assert await gate.acquire() == 0.0


async def test_queued_request_reports_its_wait_to_the_route() -> None:
    release = asyncio.Event()
    app = slow_app(release, admission_max_in_flight=1, admission_queue_max=1, admission_queue_timeout_ms=60_000)
    async with client(app) as c:
        first = asyncio.create_task(c.get("/v1/slow"))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(c.get("/v1/slow"))
        await asyncio.sleep(0.05)
        release.set()
        one, two = await asyncio.gather(first, second)
    assert one.json()["queued_ms"] == 0.0
    assert two.json()["queued_ms"] > 0.0


async def test_without_a_bound_nothing_is_refused() -> None:
    release = asyncio.Event()
    release.set()
    async with client(slow_app(release)) as c:
        statuses = await asyncio.gather(*(c.get("/v1/slow") for _ in range(50)))
    assert {r.status_code for r in statuses} == {200}
