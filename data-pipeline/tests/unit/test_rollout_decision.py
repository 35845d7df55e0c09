"""The rollout controller's pure decision (decision 1006): too few impressions, each guard, ties, promotion."""

from __future__ import annotations

import pytest

from pickwise_pipeline.experiments import ExperimentReport, GroupStats
from pickwise_pipeline.rollout import Arm, Limits, arm_of, decide

pytestmark = pytest.mark.unit

LIMITS = Limits(min_impressions=100, max_p95_ms=300, max_error_rate=0.05, ctr_sigmas=2, window_s=600)


def arm(version: str, impressions: int, clicked: int, *, p95: float | None = 120.0, errors: int = 0) -> Arm:
    return Arm(version, impressions=impressions, clicked=clicked, timed=impressions, p95_latency_ms=p95,
               errors=errors)


def test_too_few_impressions_holds_even_with_no_clicks() -> None:
    decision = decide(arm("2", 99, 0), arm("1", 1000, 300), elapsed_s=10_000, limits=LIMITS)
    assert (decision.action, decision.reason) == ("hold", "too_few_impressions")


def test_ctr_below_champion_minus_two_sigma_rolls_back() -> None:
    decision = decide(arm("2", 400, 20), arm("1", 400, 80), elapsed_s=60, limits=LIMITS)
    assert (decision.action, decision.reason) == ("rolled_back", "ctr")
    assert "0.0500 < champion 0.2000" in decision.detail


def test_ctr_just_inside_two_sigma_holds() -> None:
    # sigma of the difference for 0.25 vs 0.30 over 400 each = 0.0316; floor 0.2367 < 0.25
    decision = decide(arm("2", 400, 100), arm("1", 400, 120), elapsed_s=60, limits=LIMITS)
    assert decision.action == "hold"
    assert not [g for g in decision.guards if g.breached]


def test_equal_ctr_is_no_breach_and_promotes_after_the_window() -> None:
    decision = decide(arm("2", 300, 60), arm("1", 300, 60), elapsed_s=600, limits=LIMITS)
    assert (decision.action, decision.reason) == ("promoted", "held")


def test_no_clicks_on_either_side_is_a_tie() -> None:
    decision = decide(arm("2", 300, 0), arm("1", 300, 0), elapsed_s=601, limits=LIMITS)
    assert decision.action == "promoted"


def test_p95_latency_over_the_limit_rolls_back() -> None:
    decision = decide(arm("2", 200, 60, p95=450.0), arm("1", 200, 50), elapsed_s=60, limits=LIMITS)
    assert (decision.action, decision.reason) == ("rolled_back", "p95_latency_ms")
    assert "450 ms > 300 ms" in decision.detail


def test_p95_latency_exactly_at_the_limit_holds() -> None:
    decision = decide(arm("2", 200, 60, p95=300.0), arm("1", 200, 50), elapsed_s=60, limits=LIMITS)
    assert decision.action == "hold"


def test_error_rate_over_the_limit_rolls_back_first() -> None:
    decision = decide(arm("2", 200, 0, p95=900.0, errors=11), arm("1", 200, 80), elapsed_s=60, limits=LIMITS)
    assert (decision.action, decision.reason) == ("rolled_back", "error_rate")
    assert {g.name for g in decision.guards if g.breached} == {"error_rate", "p95_latency_ms", "ctr"}


def test_error_rate_exactly_at_the_limit_holds() -> None:
    decision = decide(arm("2", 200, 60, errors=10), arm("1", 200, 60), elapsed_s=60, limits=LIMITS)
    assert decision.action == "hold"


def test_window_not_over_holds() -> None:
    decision = decide(arm("2", 300, 90), arm("1", 300, 60), elapsed_s=599, limits=LIMITS)
    assert (decision.action, decision.reason) == ("hold", "window_open")


def test_champion_with_too_few_impressions_cannot_be_beaten_yet() -> None:
    decision = decide(arm("2", 300, 90), arm("1", 20, 2), elapsed_s=6000, limits=LIMITS)
    assert (decision.action, decision.reason) == ("hold", "champion_too_few_impressions")


def test_without_a_champion_a_challenger_that_held_is_promoted() -> None:
    decision = decide(arm("2", 300, 90), None, elapsed_s=600, limits=LIMITS)
    assert decision.action == "promoted"


def _stats(ranker: str, impressions: int, clicked: int, p95: float | None) -> GroupStats:
    return GroupStats(experiment="", variant="", ranker=ranker, impressions=impressions, clicked=clicked, carted=0,
                      purchased=0, timed=impressions, p95_latency_ms=p95, errors=0)


def test_arm_prefers_the_version_served_under_the_alias() -> None:
    report = ExperimentReport(since=None, until=None, control="A", rankers=[  # type: ignore[arg-type]
        _stats("pickwise-ranker/3@champion", 50, 5, 100.0), _stats("pickwise-ranker/3@challenger", 70, 7, 200.0),
        _stats("pickwise-ranker/4@challenger", 10, 1, 50.0)])
    assert arm_of(report, "pickwise-ranker", "3", "challenger").impressions == 70


def test_arm_merges_other_labels_of_the_version_conservatively() -> None:
    report = ExperimentReport(since=None, until=None, control="A", rankers=[  # type: ignore[arg-type]
        _stats("pickwise-ranker/3", 50, 5, 100.0), _stats("pickwise-ranker/3@latest", 70, 7, 200.0)])
    merged = arm_of(report, "pickwise-ranker", "3", "champion")
    assert (merged.impressions, merged.clicked, merged.p95_latency_ms) == (120, 12, 200.0)


def test_arm_of_a_version_never_served_is_empty() -> None:
    report = ExperimentReport(since=None, until=None, control="A")  # type: ignore[arg-type]
    assert arm_of(report, "pickwise-ranker", "9", "challenger").impressions == 0
