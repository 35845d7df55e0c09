"""The popularity fallback's per-key reads as pure logic: one key's script answer parsed, several keys'
scores summed per id, best first (decision 0807)."""

import pytest

from pickwise_gateway.popularity import parse_top, sum_scores

pytestmark = pytest.mark.unit


def test_a_key_answer_parses_into_members_and_scores() -> None:
    assert parse_top("or-85123A\n12\nor-22423\n1.5") == [("or-85123A", 12.0), ("or-22423", 1.5)]
    assert parse_top(b"fm-00001\n3") == [("fm-00001", 3.0)]


@pytest.mark.parametrize("empty", ["", b"", None])
def test_an_empty_or_missing_key_has_no_rows(empty) -> None:
    assert parse_top(empty) == []


def test_scores_are_summed_across_keys_best_first() -> None:
    hours = [[("a", 5.0), ("b", 1.0)], [("b", 4.0), ("c", 2.0)], [], [("c", 1.0)]]
    assert sum_scores(hours) == [("a", 5.0), ("b", 5.0), ("c", 3.0)]


def test_the_sum_keeps_only_the_top() -> None:
    assert sum_scores([[("a", 1.0), ("b", 2.0), ("c", 3.0)]], top=2) == [("c", 3.0), ("b", 2.0)]
