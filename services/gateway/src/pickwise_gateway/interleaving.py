"""Team-draft interleaving (decision 1005): two rankings of the same candidates merged into one page; each round
the team with fewer picks (a coin flip when they have as many) takes its best item not yet on the page. Clicks
on a team's items credit its ranker (A = champion, B = challenger)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

Team = Literal["A", "B"]


def team_draft(ranking_a: Sequence[str], ranking_b: Sequence[str], k: int,
               rng: random.Random) -> list[tuple[str, Team]]:
    """Up to ``k`` (item id, team) pairs, no id twice; when one ranking runs out the other keeps picking."""
    page: list[tuple[str, Team]] = []
    taken: set[str] = set()
    cursor: dict[Team, int] = {"A": 0, "B": 0}
    rankings: dict[Team, Sequence[str]] = {"A": ranking_a, "B": ranking_b}
    picks: dict[Team, int] = {"A": 0, "B": 0}

    def next_of(team: Team) -> str | None:
        ranking = rankings[team]
        while cursor[team] < len(ranking) and ranking[cursor[team]] in taken:
            cursor[team] += 1
        return ranking[cursor[team]] if cursor[team] < len(ranking) else None

    while len(page) < k:
        if picks["A"] != picks["B"]:
            order: list[Team] = ["A", "B"] if picks["A"] < picks["B"] else ["B", "A"]
        else:
            order = ["A", "B"] if rng.random() < 0.5 else ["B", "A"]
        for team in order:
            item = next_of(team)
            if item is not None:
                break
        else:
            break  # both rankings exhausted
        page.append((item, team))
        taken.add(item)
        picks[team] += 1
    return page
