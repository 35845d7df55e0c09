"""The offline gate's rule (decision 1003), without a registry."""

import pytest

from pickwise_pipeline.model_registry import CHALLENGER, PROMOTED, REJECTED, decide

pytestmark = pytest.mark.unit


def test_first_version_becomes_champion() -> None:
    decision = decide(0.5, None, has_champion=False, min_gain=0.01)
    assert (decision.action, decision.alias, decision.reason) == (PROMOTED, "champion", "first version")


def test_version_that_beats_the_champion_by_min_gain_becomes_challenger() -> None:
    decision = decide(0.62, 0.60, has_champion=True, min_gain=0.01)
    assert (decision.action, decision.alias) == (CHALLENGER, "challenger")
    assert decision.gain == pytest.approx(0.02)


def test_cf_winner_becomes_champion_directly() -> None:
    assert decide(0.62, 0.60, has_champion=True, min_gain=0.01, win_action=PROMOTED).alias == "champion"


def test_gain_below_min_gain_is_rejected() -> None:
    decision = decide(0.605, 0.60, has_champion=True, min_gain=0.01)
    assert (decision.action, decision.alias) == (REJECTED, None)
    assert "below min_gain" in decision.reason


def test_worse_version_is_rejected() -> None:
    assert decide(0.55, 0.60, has_champion=True, min_gain=0.0).action == REJECTED


def test_below_retrieval_order_is_never_promoted_even_as_first_version() -> None:
    decision = decide(0.80, None, has_champion=False, min_gain=0.0, floor=0.85, floor_name="retrieval order")
    assert decision.action == REJECTED
    assert "retrieval order" in decision.reason


def test_champion_without_a_value_on_this_data_leaves_the_decision_to_the_win_action() -> None:
    assert decide(0.5, None, has_champion=True, min_gain=0.01).action == CHALLENGER
    assert decide(0.5, None, has_champion=True, min_gain=0.01, win_action=REJECTED).action == REJECTED
