import random

import pytest

from pickwise_gateway.interleaving import team_draft

pytestmark = pytest.mark.unit


def test_no_item_is_shown_twice_and_every_item_comes_from_a_ranking() -> None:
    a, b = ["x1", "x2", "x3", "x4", "x5"], ["x5", "x3", "x6", "x1", "x7"]
    page = team_draft(a, b, 10, random.Random(1))
    ids = [i for i, _ in page]
    assert len(ids) == len(set(ids)) == len(set(a) | set(b))


@pytest.mark.parametrize("seed", range(20))
def test_teams_pick_in_turn(seed: int) -> None:
    a, b = [f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]
    page = team_draft(a, b, 10, random.Random(seed))
    for n in range(1, len(page) + 1):
        teams = [t for _, t in page[:n]]
        assert abs(teams.count("A") - teams.count("B")) <= 1


def test_each_team_takes_its_best_item_not_yet_on_the_page() -> None:
    a, b = ["p", "q", "r"], ["p", "s", "q"]
    page = team_draft(a, b, 3, random.Random(0))
    first_id, first_team = page[0]
    assert first_id == "p"
    second_id, second_team = page[1]
    assert second_team != first_team
    assert second_id == ("s" if second_team == "B" else "q")


def test_coin_flip_decides_who_starts_on_ties() -> None:
    starters = {team_draft(["a"], ["b"], 1, random.Random(seed))[0][1] for seed in range(40)}
    assert starters == {"A", "B"}


def test_when_one_ranking_runs_out_the_other_fills_the_page() -> None:
    page = team_draft(["a"], ["b1", "b2", "b3"], 4, random.Random(3))
    assert sorted(i for i, _ in page) == ["a", "b1", "b2", "b3"]
    assert [t for i, t in page if i == "a"] == ["A"]


def test_page_stops_at_k() -> None:
    assert len(team_draft(list("abcdef"), list("fedcba"), 4, random.Random(0))) == 4
