"""Experiment statistics (decision 1005b): Wilson intervals, the two-proportion z-test, the sign test, the table."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from pickwise_pipeline.experiments import (
    ExperimentReport,
    GroupStats,
    InterleavingStats,
    compare_to_control,
    difference_sigma,
    parse_duration_s,
    render,
    sign_test_p_value,
    two_proportion_p_value,
    wilson,
)

pytestmark = pytest.mark.unit


def test_wilson_interval_of_a_known_case() -> None:
    rate = wilson(20, 100)
    assert rate.estimate == pytest.approx(0.2)
    assert (rate.lower, rate.upper) == (pytest.approx(0.1333, abs=1e-4), pytest.approx(0.2888, abs=1e-4))


def test_wilson_of_zero_successes_keeps_a_positive_upper_bound() -> None:
    rate = wilson(0, 50)
    assert rate.lower == 0.0
    assert 0.05 < rate.upper < 0.1


def test_wilson_without_trials_is_uninformative() -> None:
    assert (wilson(0, 0).lower, wilson(0, 0).upper) == (0.0, 1.0)


def test_two_proportion_test_of_a_clear_difference() -> None:
    assert two_proportion_p_value(30, 100, 10, 100) < 0.001


def test_two_proportion_test_of_equal_rates_is_one() -> None:
    assert two_proportion_p_value(0, 100, 0, 80) == 1.0
    assert two_proportion_p_value(10, 100, 10, 100) == pytest.approx(1.0)


def test_two_proportion_test_without_trials_is_none() -> None:
    assert two_proportion_p_value(0, 0, 5, 10) is None


def test_difference_sigma() -> None:
    assert difference_sigma(25, 100, 50, 100) == pytest.approx((0.25 * 0.75 / 100 + 0.25 / 100) ** 0.5)


def test_sign_test() -> None:
    assert sign_test_p_value(0, 0) is None
    assert sign_test_p_value(5, 5) == pytest.approx(1.0)
    assert sign_test_p_value(2, 18) < 0.001


def _variant(variant: str, impressions: int, clicked: int) -> GroupStats:
    return GroupStats(experiment="default", variant=variant, ranker="", impressions=impressions, clicked=clicked,
                      carted=0, purchased=0, timed=impressions, p95_latency_ms=80.0, errors=0)


def test_p_values_are_against_the_control_of_the_same_experiment() -> None:
    variants = [_variant("A", 100, 10), _variant("B", 100, 30)]
    compare_to_control(variants, "A")
    assert variants[0].p_value_ctr is None
    assert variants[1].p_value_ctr == pytest.approx(two_proportion_p_value(30, 100, 10, 100))


def test_render_shows_every_variant_ranker_and_interleaving_row() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    report = ExperimentReport(since=now, until=now, control="A", variants=[_variant("A", 100, 10)],
                              rankers=[_variant("", 100, 10)], interleaving=[InterleavingStats("default", 40, 3, 9, 2)])
    report.rankers[0].ranker = "pickwise-ranker/2@champion"
    text = render(report)
    assert "pickwise-ranker/2@champion" in text
    assert "10.00 [" in text
    assert "default" in text.split("team-draft")[1]


def test_since_durations() -> None:
    assert parse_duration_s("15m") == 900
    assert parse_duration_s("1h") == 3600
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration_s("yesterday")


def test_report_without_postgres_exits_1_with_a_message(monkeypatch, capsys) -> None:
    from pickwise_common.launcher.processes import free_port
    from pickwise_pipeline.cli import main

    monkeypatch.setenv("PICKWISE_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    assert main(["experiment", "report"]) == 1
    assert "experiment report: Postgres" in capsys.readouterr().err
