"""drift against real Postgres (own database, migrations applied): impressions stored as the event-consumer stores
them (constraints in ``payload``), clicks joined by request_id; identical windows show no drift, a shifted brand
mix and score distribution do; the periodic job publishes the gauges; the command prints JSON."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from pickwise_common.postgres import apply_migrations
from pickwise_pipeline import monitor
from pickwise_pipeline.drift import DriftMetrics, DriftSettings, Window, drift_job, measure

pytestmark = pytest.mark.integration

REFERENCE = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC))
SAME = Window(datetime(2026, 1, 8, tzinfo=UTC), datetime(2026, 1, 8, 1, tzinfo=UTC))
SHIFTED = Window(datetime(2026, 1, 9, tzinfo=UTC), datetime(2026, 1, 9, 1, tzinfo=UTC))
USUAL_MIX = {"Samsung": 0.5, "Apple": 0.3, "Xiaomi": 0.2}
SETTINGS = DriftSettings(drift_min_rows=200)


def _rows(window: Window, n: int, mix: dict[str, float], *, score_mean: float, ctr: float, seed: int
          ) -> tuple[list[tuple], list[tuple]]:
    rng = random.Random(seed)
    span_s = (window.end - window.start).total_seconds()
    impressions, clicks = [], []
    brands, weights = list(mix), list(mix.values())
    for n_row in range(n):
        request_id = f"drift-{seed}-{n_row}"
        ts = window.start + timedelta(seconds=rng.uniform(0, span_s - 1))
        constraints = {"brands": [rng.choices(brands, weights)[0]], "price_max": rng.choice([15000, 25000, 40000])}
        items = [{"item_id": f"i{rng.randrange(500)}", "position": p, "score": rng.gauss(score_mean, 1.0)}
                 for p in range(10)]
        impressions.append((uuid.uuid4(), request_id, ts, "search", json.dumps(items),
                            json.dumps({"constraints": constraints})))
        if rng.random() < ctr:
            clicks.append((uuid.uuid4(), "click", "u1", items[rng.randrange(3)]["item_id"], request_id,
                           ts + timedelta(seconds=1)))
    return impressions, clicks


@pytest.fixture(scope="module")
def database(fresh_database) -> str:
    _, url = fresh_database("drift")
    batches = [_rows(REFERENCE, 1500, USUAL_MIX, score_mean=0.0, ctr=0.1, seed=1),
               _rows(SAME, 600, USUAL_MIX, score_mean=0.0, ctr=0.1, seed=2),
               _rows(SHIFTED, 600, {"Samsung": 0.1, "Apple": 0.1, "Realme": 0.8}, score_mean=0.8, ctr=0.3, seed=3)]
    # a failed response and a feed in the current window: neither is part of the query signals
    extra = [(uuid.uuid4(), "failed", SAME.start + timedelta(minutes=5), "search", "[]",
              json.dumps({"constraints": {"brands": ["Nokia"]}}), 503),
             (uuid.uuid4(), "feed", SAME.start + timedelta(minutes=5), "feed", "[]", "{}", 200)]

    async def load() -> None:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            for impressions, clicks in batches:
                await conn.executemany(
                    "INSERT INTO impressions (event_id, request_id, ts, endpoint, items, payload) "
                    "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)", impressions)
                await conn.executemany(
                    "INSERT INTO events (event_id, type, user_id, item_id, request_id, ts) "
                    "VALUES ($1, $2, $3, $4, $5, $6)", clicks)
            await conn.executemany(
                "INSERT INTO impressions (event_id, request_id, ts, endpoint, items, payload, status) "
                "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)", extra)
        finally:
            await conn.close()

    asyncio.run(load())
    return url


def _measure(url: str, current: Window) -> dict:
    async def go() -> dict:
        conn = await asyncpg.connect(url)
        try:
            return (await measure(conn, REFERENCE, current, settings=SETTINGS)).as_dict()
        finally:
            await conn.close()

    return asyncio.run(go())


def _signals(report: dict) -> dict[str, dict]:
    return {s["signal"]: s for s in report["signals"]}


def test_identical_windows_show_no_drift(database: str) -> None:
    report = _measure(database, SAME)
    signals = _signals(report)
    assert (report["reference"]["rows"], report["current"]["rows"]) == (1500, 600)
    assert all(s["psi"] is not None and s["psi"] < 0.1 for s in signals.values()), signals
    assert signals["ranker_score"]["ks_pvalue"] > 0.001
    assert signals["ctr"]["ks_pvalue"] > 0.001


def test_a_shifted_brand_mix_scores_and_ctr_are_significant_drift(database: str) -> None:
    signals = _signals(_measure(database, SHIFTED))
    assert signals["brand"]["psi"] > 0.25 and signals["brand"]["level"] == "significant"
    assert signals["ranker_score"]["psi"] > 0.25 and signals["ranker_score"]["ks_pvalue"] < 1e-6
    assert signals["ctr"]["psi"] > 0.1 and signals["ctr"]["ks_pvalue"] < 1e-6
    assert signals["price_band"]["psi"] < 0.1  # the price constraints kept their mix


def test_a_large_window_is_sampled_over_its_whole_span(database: str) -> None:
    async def go() -> dict:
        conn = await asyncpg.connect(database)
        try:
            settings = SETTINGS.model_copy(update={"drift_max_rows": 500})
            return (await measure(conn, REFERENCE, SAME, settings=settings)).as_dict()
        finally:
            await conn.close()

    report = asyncio.run(go())
    assert report["reference"]["impressions"] == 1500
    assert 400 <= report["reference"]["rows"] <= 600  # a third of the rows, by a hash of request_id
    assert report["current"]["impressions"] == 600 and 400 <= report["current"]["rows"] < 600
    assert _signals(report)["brand"]["psi"] < 0.1  # the sample has the window's mix


def test_the_job_publishes_gauges_and_none_for_an_empty_window(database: str) -> None:
    registry = CollectorRegistry()
    metrics = DriftMetrics(registry)
    settings = SETTINGS.model_copy(update={"drift_reference_s": 7 * 86400.0, "drift_current_s": 3600.0})

    async def go(now: datetime) -> None:
        pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
        try:
            await drift_job(pool, metrics, settings, now=now)
        finally:
            await pool.close()

    asyncio.run(go(SHIFTED.end))  # current = SHIFTED, reference = the 7 days before it (holds SAME only: 600)
    assert registry.get_sample_value("pickwise_drift_psi", {"signal": "brand"}) > 0.25
    assert registry.get_sample_value("pickwise_drift_window_rows", {"window": "current"}) == 600
    asyncio.run(go(SHIFTED.end + timedelta(days=1)))  # nothing in the last hour
    assert registry.get_sample_value("pickwise_drift_psi", {"signal": "brand"}) is None
    assert registry.get_sample_value("pickwise_drift_ks_pvalue", {"signal": "ranker_score"}) is None
    assert registry.get_sample_value("pickwise_drift_window_rows", {"window": "current"}) == 0
    assert registry.get_sample_value("pickwise_drift_last_run_timestamp_seconds") > 0


def test_the_monitor_runs_the_drift_job_and_exports_it(database: str) -> None:
    settings = monitor.MonitorSettings(postgres_url=database, drift_interval_s=120, drift_min_rows=200)

    async def go() -> bool:
        pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
        try:
            jobs = {job.name: job for job in monitor.periodic_jobs(pool, _NoRegistry(), settings)}
            assert jobs["drift"].interval_s == 120
            return await monitor.run_once(jobs["drift"])
        finally:
            await pool.close()

    assert asyncio.run(go())
    # the data is from January 2026: nothing in the last hour, so rows are counted and no PSI is exported
    assert REGISTRY.get_sample_value("pickwise_drift_window_rows", {"window": "current"}) == 0
    assert REGISTRY.get_sample_value("pickwise_drift_psi", {"signal": "brand"}) is None
    assert REGISTRY.get_sample_value("pickwise_monitor_job_runs_total", {"job": "drift", "outcome": "ok"}) >= 1


class _NoRegistry:
    enabled = False


def _cli(database: str, infra, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ) | infra.config.env() | {"PICKWISE_POSTGRES_URL": database}
    return subprocess.run([sys.executable, "-m", "pickwise_pipeline", "drift", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_drift_command_prints_json_and_a_table(database: str, infra) -> None:
    bounds = ["--reference-from", REFERENCE.start.isoformat(), "--reference-to", REFERENCE.end.isoformat(),
              "--current-from", SHIFTED.start.isoformat(), "--current-to", SHIFTED.end.isoformat()]
    as_json = _cli(database, infra, *bounds, "--json")
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    assert _signals(json.loads(as_json.stdout))["brand"]["level"] == "significant"
    table = _cli(database, infra, *bounds, "--min-rows", "5000")
    assert table.returncode == 0, table.stderr[-2000:]
    assert "too few rows (need 5000 in each window)" in table.stdout


def test_drift_command_names_a_bad_flag(database: str, infra) -> None:
    result = _cli(database, infra, "--current", "an hour")
    assert result.returncode == 2
    assert result.stderr.startswith("--current:")
