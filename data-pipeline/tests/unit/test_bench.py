"""The load generator's arithmetic and bounds, against a scripted gateway (httpx.MockTransport)."""

import asyncio

import httpx
import pytest

from pickwise_client import AsyncClient
from pickwise_pipeline.bench import Cell, check_targets, percentile, run_cell, summarise

pytestmark = pytest.mark.unit


def test_percentile_interpolates() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([], 50) == 0.0


def test_summary_counts_errors_and_stages() -> None:
    cell = Cell("search", 10, latencies_ms=[10.0, 20.0, 30.0, 40.0], wall_s=0.5)
    cell.statuses.update({"200": 3, "503": 1})
    cell.stages["retrieve"].extend([5.0, 7.0])
    row = summarise(cell)
    assert row["error_rate"] == 0.25
    assert row["throughput_rps"] == 8.0
    assert row["stages_ms"]["retrieve"]["p50"] == 6.0


def test_targets_are_checked_against_measured_rows() -> None:
    rows = [{"endpoint": "search", "concurrency": 10, "p50_ms": 40.0, "p99_ms": 260.0, "throughput_rps": 80.0,
             "cpu_ms_per_request": {"gateway": 5.0, "stack total": 18.5}}]
    checks = check_targets(rows)
    assert checks["search@c10.p99_ms"]["met"] is False
    assert checks["search@c10.throughput_rps_min"]["met"] is True
    assert checks["search@c10.cpu_ms_per_request_stack_max"] == {"target": 20.0, "measured": 18.5, "met": True}


def test_a_cache_hit_row_is_not_checked_against_the_targets() -> None:
    rows = [{"endpoint": "search", "concurrency": 10, "caches": "cache-hit (20 queries cycled)", "p99_ms": 20.0,
             "throughput_rps": 300.0}]
    assert check_targets(rows) == {}


def test_a_cell_sends_exactly_the_requested_number() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"request_id": "r", "query": "q", "items": [], "parsed": {},
                                         "timings_ms": {"retrieve": 3.0, "total": 5.0}, "variant": "A",
                                         "degraded": True, "degradation_reasons": ["llm_offline"]})

    async def go() -> Cell:
        async with AsyncClient("http://gw", transport=httpx.MockTransport(gateway)) as client:
            return await run_cell(client, "recommendations", 4, ["q1", "q2"], requests=10, max_seconds=5)

    cell = asyncio.run(go())
    assert cell.requests == 10
    assert cell.statuses == {"200": 10}
    assert cell.degraded == {"llm_offline": 10}
    assert len(cell.stages["total"]) == 10


def test_a_query_stream_is_used_once_and_ends_the_cell_when_spent() -> None:
    seen: list[str] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["q"])
        return httpx.Response(200, json={"request_id": "r", "query": "q", "items": [], "parsed": {},
                                         "timings_ms": {"total": 5.0}, "variant": "A"})

    async def go() -> Cell:
        async with AsyncClient("http://gw", transport=httpx.MockTransport(gateway)) as client:
            return await run_cell(client, "search", 3, iter([f"q{i}" for i in range(7)]), requests=10,
                                  max_seconds=5)

    cell = asyncio.run(go())
    assert cell.requests == 7
    assert sorted(seen) == [f"q{i}" for i in range(7)]
