"""The monitor's pure parts: the experiment gauges replaced as a whole, a failing job counted and survived."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from pickwise_pipeline.experiments import ExperimentReport, GroupStats
from pickwise_pipeline.monitor import PeriodicJob, export_experiments, run_once

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _stats(variant: str, ranker: str, impressions: int, clicked: int) -> GroupStats:
    return GroupStats(experiment="ab" if variant else "", variant=variant, ranker=ranker, impressions=impressions,
                      clicked=clicked, carted=0, purchased=0, timed=impressions, p95_latency_ms=50.0, errors=0)


def test_rates_and_bounds_are_exported_per_variant_and_ranker() -> None:
    export_experiments(ExperimentReport(NOW, NOW, "A", variants=[_stats("A", "", 100, 20)],
                                        rankers=[_stats("", "pickwise-ranker/1@champion", 100, 20)]))
    labels = {"experiment": "ab", "variant": "A", "metric": "ctr"}
    assert REGISTRY.get_sample_value("pickwise_experiment_impressions", {"experiment": "ab", "variant": "A"}) == 100
    assert REGISTRY.get_sample_value("pickwise_experiment_rate", labels | {"bound": "estimate"}) == 0.2
    assert REGISTRY.get_sample_value("pickwise_experiment_rate", labels | {"bound": "lower"}) < 0.2
    assert REGISTRY.get_sample_value("pickwise_experiment_ranker_rate", {
        "model_version": "pickwise-ranker/1@champion", "metric": "ctr", "bound": "upper"}) > 0.2


def test_a_variant_that_left_the_window_has_no_series() -> None:
    export_experiments(ExperimentReport(NOW, NOW, "A", variants=[_stats("B", "", 10, 1)]))
    export_experiments(ExperimentReport(NOW, NOW, "A", variants=[_stats("A", "", 10, 1)]))
    assert REGISTRY.get_sample_value("pickwise_experiment_impressions", {"experiment": "ab", "variant": "B"}) is None


def test_a_failing_job_is_counted_and_does_not_raise() -> None:
    async def broken() -> None:
        raise ConnectionError("postgres went away")

    before = REGISTRY.get_sample_value("pickwise_monitor_job_runs_total", {"job": "broken", "outcome": "failed"}) or 0
    assert asyncio.run(run_once(PeriodicJob("broken", 1.0, broken))) is False
    assert REGISTRY.get_sample_value("pickwise_monitor_job_runs_total",
                                     {"job": "broken", "outcome": "failed"}) == before + 1


def test_the_monitors_metrics_are_documented_in_the_operations_guide() -> None:
    import re

    from pickwise_common.settings import REPO_ROOT

    documented = set(re.findall(r"`(pickwise_[a-z0-9_]+)`", (REPO_ROOT / "docs" / "operations.md").read_text()))
    exposed = {m.name + ("_total" if m.type == "counter" else "") for m in REGISTRY.collect()
               if m.name.startswith(("pickwise_experiment", "pickwise_rollout", "pickwise_monitor"))}
    assert "pickwise_rollout_actions_total" in exposed
    assert sorted(exposed - documented) == []
