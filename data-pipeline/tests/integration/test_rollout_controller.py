"""The rollout controller against the session's real Postgres (own database) and MLflow registry (own model name
per test): a challenger whose CTR breaches the floor is rolled back (alias deleted, version tagged, model_events
row, metric); one that held is promoted; a slow one is rolled back on p95. And the monitor process exports the
experiment metrics."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from pickwise_common.launcher.processes import free_port, wait_until
from pickwise_common.postgres import apply_migrations
from pickwise_common.registry import Registry, RegistrySettings
from pickwise_common.testing.model_events import rollout_outcomes
from pickwise_pipeline import rollout

pytestmark = pytest.mark.integration

SETTINGS = rollout.RolloutSettings(rollout_min_impressions=100, rollout_window_s=3600)


@pytest.fixture(scope="module")
def database(fresh_database) -> str:
    _, url = fresh_database("rollout")

    async def migrate() -> None:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(migrate())
    return url


@pytest.fixture(scope="module")
def registry(infra) -> Registry:
    return Registry(RegistrySettings(mlflow_tracking_uri=infra.config.mlflow_uri))


@pytest.fixture
def model(registry: Registry, tmp_path: Path) -> str:
    """A model of this test's own with version 1 = champion, 2 = challenger."""
    name = f"pickwise-ranker-it-{uuid.uuid4().hex[:8]}"
    (tmp_path / "ranker-v1.txt").write_text("a stand-in model file\n")
    for _ in range(2):
        registry.register(name, artifact_dir=tmp_path)
    registry.set_alias(name, "champion", "1")
    registry.set_alias(name, "challenger", "2")
    return name


async def _seed(url: str, model: str, rows: list[tuple], *, challenger_since_s: float = 600) -> None:
    """``rows``: (version, alias, impressions, clicked, latency_ms[, variant = alias]); the challenger row at
    ``challenger_since_s`` ago, impressions 60 s ago."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO model_events (ts, model_name, version, action, reason) "
                           "VALUES ($1, $2, '2', 'challenger', 'test')", now - timedelta(seconds=challenger_since_s),
                           model)
        for version, alias, impressions, clicked, latency_ms, *variant in rows:
            for n in range(impressions):
                request_id = f"{model}-{version}-{variant[0] if variant else alias}-{n}"
                await conn.execute(
                    """INSERT INTO impressions (event_id, request_id, ts, endpoint, variant, model_versions, items,
                           latency_ms) VALUES ($1, $2, $3, 'search', $4, $5::jsonb, $6::jsonb, $7)""",
                    uuid.uuid4(), request_id, now - timedelta(seconds=60), variant[0] if variant else alias,
                    json.dumps({"ranker": f"{model}/{version}@{alias}"}),
                    json.dumps([{"item_id": "i1", "position": 0}]), latency_ms)
                if n < clicked:
                    await conn.execute("INSERT INTO events (event_id, type, user_id, item_id, request_id, ts) "
                                       "VALUES ($1, 'click', 'u', 'i1', $2, $3)", uuid.uuid4(), request_id,
                                       now - timedelta(seconds=50))
    finally:
        await conn.close()


def _tick(url: str, registry: Registry, model: str, settings: rollout.RolloutSettings) -> rollout.Decision:
    return asyncio.run(rollout.tick_once(url, registry, settings, models=[model]))[model]


def test_a_challenger_below_the_ctr_floor_is_rolled_back_with_the_reason_recorded(database, registry, model) -> None:
    asyncio.run(_seed(database, model, [("1", "champion", 150, 45, 80.0), ("2", "challenger", 150, 9, 90.0)]))

    decision = _tick(database, registry, model, SETTINGS)

    assert (decision.action, decision.reason) == ("rolled_back", "ctr")
    assert registry.alias_version(model, "challenger") is None
    assert registry.alias_version(model, "champion") == "1"
    assert "CTR 0.0600 < champion 0.3000" in registry.version(model, "2").tags["rollback_reason"]
    (row,) = asyncio.run(rollout_outcomes(database, model))
    assert (row["version"], row["action"]) == ("2", "rolled_back")
    assert json.loads(row["detail"])["challenger"]["impressions"] == 150
    assert REGISTRY.get_sample_value("pickwise_rollout_actions_total",
                                     {"model": model, "action": "rolled_back", "reason": "ctr"}) == 1


def test_a_challenger_that_held_for_the_window_is_promoted(database, registry, model) -> None:
    asyncio.run(_seed(database, model, [("1", "champion", 120, 30, 80.0), ("2", "challenger", 120, 33, 90.0)]))

    decision = _tick(database, registry, model, SETTINGS.model_copy(update={"rollout_window_s": 300}))

    assert decision.action == "promoted"
    assert registry.alias_version(model, "champion") == "2"
    assert registry.alias_version(model, "challenger") is None
    assert [(r["version"], r["action"]) for r in asyncio.run(rollout_outcomes(database, model))] == [("2", "promoted")]


def test_a_challenger_inside_the_window_holds_and_exports_its_guards(database, registry, model) -> None:
    asyncio.run(_seed(database, model, [("1", "champion", 120, 30, 80.0), ("2", "challenger", 120, 33, 90.0)]))

    decision = _tick(database, registry, model, SETTINGS)

    assert (decision.action, decision.reason) == ("hold", "window_open")
    assert registry.alias_version(model, "challenger") == "2"
    assert REGISTRY.get_sample_value("pickwise_rollout_challenger_info", {"model": model, "version": "2"}) == 1
    assert REGISTRY.get_sample_value("pickwise_rollout_guard", {"model": model, "version": "2", "guard": "ctr",
                                                                "stat": "value"}) == pytest.approx(33 / 120)


def test_the_challenger_is_compared_with_the_champion_on_the_control_variant(database, registry, model) -> None:
    # the champion does well on variant B's fusion, as the challenger does on A's: no breach, like with like
    asyncio.run(_seed(database, model, [("1", "champion", 120, 24, 80.0, "A"), ("1", "champion", 120, 72, 80.0, "B"),
                                        ("2", "challenger", 120, 24, 90.0)]))

    decision = _tick(database, registry, model, SETTINGS)

    assert (decision.action, decision.reason) == ("hold", "window_open")
    assert next(g for g in decision.guards if g.name == "ctr").limit < 0.2


def test_a_slow_challenger_is_rolled_back_on_p95(database, registry, model) -> None:
    asyncio.run(_seed(database, model, [("1", "champion", 120, 30, 80.0), ("2", "challenger", 120, 30, 450.0)]))

    decision = _tick(database, registry, model, SETTINGS)

    assert (decision.action, decision.reason) == ("rolled_back", "p95_latency_ms")
    assert "p95 latency 450 ms > 300 ms" in registry.version(model, "2").tags["rollback_reason"]


def test_the_rollout_command_runs_one_round_and_prints_the_decisions(database, infra, registry, model) -> None:
    asyncio.run(_seed(database, model, [("1", "champion", 150, 45, 80.0), ("2", "challenger", 150, 9, 90.0)]))
    env = dict(os.environ) | infra.config.env() | {
        "PICKWISE_POSTGRES_URL": database, "PICKWISE_ROLLOUT_MODELS": json.dumps([model]),
        "PICKWISE_ROLLOUT_MIN_IMPRESSIONS": "100"}

    done = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "rollout", "--json"], env=env,
                          capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr
    decisions = json.loads(done.stdout.strip().splitlines()[-1])
    assert (decisions[model]["action"], decisions[model]["reason"]) == ("rolled_back", "ctr")
    assert registry.alias_version(model, "challenger") is None
    assert [(r["version"], r["action"]) for r in asyncio.run(rollout_outcomes(database, model))] == [
        ("2", "rolled_back")]


def test_the_monitor_process_serves_health_and_experiment_metrics(database, infra, tmp_path: Path) -> None:
    model = f"pickwise-ranker-mon-{uuid.uuid4().hex[:8]}"
    asyncio.run(_seed(database, model, [("1", "champion", 10, 4, 80.0)]))
    port = free_port()
    env = dict(os.environ) | infra.config.env() | {
        "PICKWISE_POSTGRES_URL": database, "PICKWISE_MONITOR_PORT": str(port), "PICKWISE_EXPERIMENT_INTERVAL_S": "0.5",
        "PICKWISE_ROLLOUT_INTERVAL_S": "0.5", "PICKWISE_ROLLOUT_MODELS": json.dumps([model])}
    log = (tmp_path / "monitor.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "pickwise_pipeline", "monitor"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    label = f'model_version="{model}/1@champion"'
    try:
        def exported() -> bool:
            try:
                text = httpx.get(url + "/metrics", timeout=2).text
            except httpx.HTTPError:
                return False
            return label in text and 'pickwise_monitor_job_runs_total{job="rollout",outcome="ok"}' in text

        wait_until(exported, timeout_s=120, what="monitor metrics")
        text = httpx.get(url + "/metrics", timeout=5).text
        ready = httpx.get(url + "/readyz", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"postgres", "registry"}
    assert f'pickwise_experiment_ranker_rate{{bound="estimate",metric="ctr",{label}}} 0.4' in text
    assert 'pickwise_experiment_impressions{experiment="",variant="champion"}' in text
