"""RandPair propensity estimation and IPW weights (decision 1004b)."""

from __future__ import annotations

import random

import pytest

from pickwise_pipeline.click_model import ClickModel, browse
from pickwise_pipeline.propensity import ExploredPage, estimate, group_weights, ipw_weight

pytestmark = pytest.mark.unit


def simulated_explored_pages(n: int, model: ClickModel, seed: int) -> list[ExploredPage]:
    """Pages of items with random utilities (better ones ranked higher, as a ranker would), a random adjacent
    pair swapped with probability 1/2 — what the gateway's RandPair exploration logs."""
    rng = random.Random(seed)
    pages = []
    for _ in range(n):
        utilities = sorted((rng.uniform(0.4, 1.0) for _ in range(10)), reverse=True)
        pair = rng.randint(0, 8)
        if rng.random() < 0.5:
            utilities[pair], utilities[pair + 1] = utilities[pair + 1], utilities[pair]
        acts = browse(utilities, rng, model)
        clicked = frozenset(a.position for a in acts if a.action == "click")
        bought = [a.position for a in acts if a.action == "purchase"]
        pages.append(ExploredPage(pair, clicked, bought[0] if bought else None))
    return pages


def test_estimator_recovers_the_click_models_examination_curve():
    model = ClickModel(eta=1.0)
    found = estimate(simulated_explored_pages(80_000, model, seed=1))
    for k in range(6):
        assert found.at(k) == pytest.approx(model.examination(k), rel=0.15), k


def test_estimator_separates_a_steeper_curve():
    shallow = estimate(simulated_explored_pages(30_000, ClickModel(eta=0.5), seed=2))
    steep = estimate(simulated_explored_pages(30_000, ClickModel(eta=1.5), seed=2))
    assert steep.at(5) < shallow.at(5)


def test_without_data_propensities_stay_flat():
    assert estimate([]).values == (1.0,) * 10


def test_ratios_are_clipped_so_propensity_never_rises_down_the_page():
    # more clicks at k+1 than at k (noise) would make p rise: clipped to a ratio of 1
    pages = [ExploredPage(0, frozenset({1}))] * 50
    assert estimate(pages, pseudo_clicks=0.0).values[1] == 1.0


def test_ipw_weight_is_inverse_propensity_clipped():
    props = (1.0, 0.5, 0.25, 0.01)
    assert ipw_weight(1, props) == 2.0
    assert ipw_weight(3, props) == 20.0  # 1 / 0.05
    assert ipw_weight(9, props) == 20.0  # past the curve: its last value


def test_group_weights_put_the_clicked_rows_weight_on_the_unclicked_rows():
    props = (1.0, 0.5, 0.25)
    assert group_weights([0, 1, 0], [0, 1, 2], props) == [2.0, 2.0, 2.0]
    assert group_weights([1, 0, 1], [0, 1, 2], props) == [1.0, 2.5, 4.0]
    assert group_weights([0, 0], [0, 1], props) == [1.0, 1.0]
