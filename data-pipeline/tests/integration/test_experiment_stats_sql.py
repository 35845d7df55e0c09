"""The experiment SQL against real Postgres (own database, migrations applied): impressions joined to clicks,
add-to-cart and purchases of shown items by request_id, per variant and per ranker version; interleaving wins;
the `experiment report` command over the same rows."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from pickwise_common.postgres import apply_migrations
from pickwise_pipeline import experiments

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
CHAMPION = "pickwise-ranker/1@champion"
CHALLENGER = "pickwise-ranker/2@challenger"


def impression(request_id: str, variant: str, ranker: str, items: list[str], *, latency_ms: float = 50.0,
               status: int = 200, degraded: list[str] | None = None, teams: list[str] | None = None,
               age_s: float = 60.0) -> tuple:
    shown = [{"item_id": item, "position": n, "score": 1.0 - n / 10} | ({"team": teams[n]} if teams else {})
             for n, item in enumerate(items)]
    return (uuid.uuid4(), request_id, NOW - timedelta(seconds=age_s), "search", "default", variant,
            json.dumps({"ranker": ranker}), json.dumps(shown), teams is not None, latency_ms, status,
            json.dumps(degraded or []))


def event(kind: str, request_id: str, item_id: str) -> tuple:
    return (uuid.uuid4(), kind, "u1", item_id, request_id, NOW - timedelta(seconds=30))


ROWS = [
    # variant A, champion: 4 impressions, 2 clicked (one twice, one on an item it did not show -> not counted)
    impression("a1", "A", CHAMPION, ["i1", "i2"], latency_ms=40),
    impression("a2", "A", CHAMPION, ["i3", "i4"], latency_ms=60),
    impression("a3", "A", CHAMPION, ["i5"], latency_ms=80),
    impression("a4", "A", CHAMPION, ["i6"], latency_ms=100),
    # challenger: 2 impressions, one clicked, carted and bought, one failed over to the fused order
    impression("c1", "challenger", CHALLENGER, ["i1", "i2"], latency_ms=500),
    impression("c2", "challenger", CHALLENGER, ["i3"], latency_ms=700, degraded=["reranker_unavailable"]),
    # outside the window
    impression("old", "A", CHAMPION, ["i1"], age_s=7200),
    # interleaved: team B wins one, team A one, a tie (one click each), and one unclicked
    impression("t1", "B", CHAMPION, ["i1", "i2"], teams=["A", "B"]),
    impression("t2", "B", CHAMPION, ["i1", "i2"], teams=["A", "B"]),
    impression("t3", "B", CHAMPION, ["i1", "i2"], teams=["A", "B"]),
    impression("t4", "B", CHAMPION, ["i1", "i2"], teams=["A", "B"]),
]
EVENTS = [
    event("click", "a1", "i1"), event("click", "a1", "i2"), event("click", "a2", "i4"),
    event("click", "a3", "i9"),  # not shown by a3
    event("click", "c1", "i2"), event("add_to_cart", "c1", "i2"), event("purchase", "c1", "i2"),
    event("click", "old", "i1"),
    event("click", "t1", "i2"), event("click", "t2", "i1"), event("click", "t3", "i1"), event("click", "t3", "i2"),
]


@pytest.fixture(scope="module")
def database(fresh_database) -> str:
    _, url = fresh_database("experiments")

    async def load() -> None:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            await conn.executemany(
                """INSERT INTO impressions (event_id, request_id, ts, endpoint, experiment, variant, model_versions,
                       items, interleaving, latency_ms, status, degraded)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11, $12::jsonb)""", ROWS)
            await conn.executemany(
                "INSERT INTO events (event_id, type, user_id, item_id, request_id, ts) VALUES ($1, $2, $3, $4, $5, $6)",
                EVENTS)
        finally:
            await conn.close()

    asyncio.run(load())
    return url


def report_of(url: str) -> experiments.ExperimentReport:
    async def go() -> experiments.ExperimentReport:
        conn = await asyncpg.connect(url)
        try:
            return await experiments.compute(conn, since=NOW - timedelta(hours=1), until=NOW + timedelta(minutes=1))
        finally:
            await conn.close()

    return asyncio.run(go())


def test_variant_ctr_counts_impressions_with_a_click_on_a_shown_item(database: str) -> None:
    report = report_of(database)
    variant_a = next(v for v in report.variants if v.variant == "A")
    assert (variant_a.impressions, variant_a.clicked) == (4, 2)
    assert variant_a.ctr.lower < 0.5 < variant_a.ctr.upper


def test_ranker_rows_split_by_version_with_funnel_latency_and_errors(database: str) -> None:
    report = report_of(database)
    challenger = report.ranker(CHALLENGER)
    assert challenger is not None
    assert (challenger.impressions, challenger.clicked, challenger.carted, challenger.purchased) == (2, 1, 1, 1)
    assert challenger.errors == 1
    assert challenger.p95_latency_ms == pytest.approx(690.0)
    champion = report.ranker(CHAMPION)
    assert champion is not None and champion.impressions == 4
    interleaved = report.ranker("(interleaved)")
    assert interleaved is not None and interleaved.impressions == 4


def test_challenger_variant_has_a_p_value_against_control(database: str) -> None:
    report = report_of(database)
    challenger = next(v for v in report.variants if v.variant == "challenger")
    assert challenger.p_value_ctr == pytest.approx(experiments.two_proportion_p_value(1, 2, 2, 4))


def test_interleaving_wins_ties_and_unclicked(database: str) -> None:
    (result,) = report_of(database).interleaving
    assert (result.impressions, result.wins_a, result.wins_b, result.ties) == (4, 1, 1, 1)


def test_experiment_report_command_prints_json_and_a_table(database: str, infra) -> None:
    env = dict(os.environ) | infra.config.env() | {"PICKWISE_POSTGRES_URL": database}
    as_json = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "experiment", "report", "--since", "1h",
                              "--json"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    body = json.loads(as_json.stdout)
    assert {v["variant"] for v in body["variants"]} == {"A", "B", "challenger"}
    table = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "experiment", "report"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert table.returncode == 0, table.stderr[-2000:]
    assert CHALLENGER in table.stdout


def test_a_bad_window_is_a_usage_error(database: str, infra) -> None:
    env = dict(os.environ) | infra.config.env() | {"PICKWISE_POSTGRES_URL": database}
    result = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "experiment", "report", "--since", "soon"],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "--since" in result.stderr
