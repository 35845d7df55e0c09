"""The CF feed as pure functions over a tiny CfModel: cold start, fold-in of a new purchase, dismissed and
excluded items, recent-click neighbours, explain, items the catalog does not serve, and model pickup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pickwise_common import cf
from pickwise_retriever import cf_serving
from pickwise_retriever.cf_serving import CfModels, UserState

pytestmark = pytest.mark.unit

ITEMS = ["or-A", "or-B", "or-C", "or-D", "or-E", "or-F"]
# two tastes: A, B, C go together, D, E, F go together
FACTORS = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.0], [0.0, 1.0], [0.1, 0.9], [0.0, 0.8]], dtype=np.float32)


def tiny_model(version: str = "cf-v20261201T000000Z") -> cf.CfModel:
    return cf.CfModel(
        version=version, catalog="retail", trained_at="2026-12-01T00:00:00Z",
        window={"from": "2010-12-01", "until": "2011-10-31"}, item_ids=list(ITEMS), item_factors=FACTORS,
        regularization=0.1, alpha=1.0,
        similar={"or-A": [("or-B", 0.99), ("or-C", 0.97)], "or-D": [("or-E", 0.99), ("or-F", 0.98)]},
        bought_together={"or-A": [("or-C", 4.0, 0.5, 12)]},
        popularity=[("or-F", 10.0), ("or-E", 8.0), ("or-B", 6.0), ("or-A", 4.0), ("or-D", 2.0), ("or-C", 1.0)])


def ids(feed: cf_serving.Feed) -> list[str]:
    return [s.item_id for s in feed.items]


def test_a_user_without_history_gets_popularity_as_cold_start() -> None:
    feed = cf_serving.recommend(tiny_model(), UserState(), 4)
    assert feed.cold_start is True
    assert ids(feed) == ["or-F", "or-E", "or-B", "or-A"]
    assert all(set(s.sources) == {"popularity"} for s in feed.items)


def test_a_purchase_folds_in_and_turns_the_feed_to_its_taste() -> None:
    model = tiny_model()
    before = cf_serving.recommend(model, UserState(), 3)
    after = cf_serving.recommend(model, UserState(history={"or-A": 1.0 + np.log1p(2)}), 3)
    assert after.cold_start is False
    assert ids(after) != ids(before)
    # the bought item (repeat) and its taste neighbours (ALS on the folded-in vector) lead
    assert ids(after)[0] == "or-A"
    assert set(ids(after)[:3]) == {"or-A", "or-B", "or-C"}
    assert "als" in after.items[1].sources


def test_a_dismissed_item_is_never_recommended() -> None:
    state = UserState(history={"or-A": 3.0}, dismissed={"or-A", "or-B"})
    feed = cf_serving.recommend(tiny_model(), state, 6)
    assert "or-A" not in ids(feed) and "or-B" not in ids(feed)
    assert len(feed.items) == 4


def test_a_dismissed_item_stays_hidden_from_the_cold_start_feed() -> None:
    feed = cf_serving.recommend(tiny_model(), UserState(dismissed={"or-F"}), 3)
    assert feed.cold_start is True
    assert ids(feed) == ["or-E", "or-B", "or-A"]


def test_excluded_ids_of_the_request_are_left_out() -> None:
    feed = cf_serving.recommend(tiny_model(), UserState(history={"or-D": 2.0}), 6, exclude=["or-E"])
    assert "or-E" not in ids(feed)


def test_recent_clicks_bring_their_cf_neighbours_with_a_clicks_source() -> None:
    feed = cf_serving.recommend(tiny_model(), UserState(clicks=["or-D"]), 3, click_weight=0.3)
    assert feed.cold_start is False
    by_id = {s.item_id: s for s in feed.items}
    assert "clicks" in by_id["or-E"].sources
    assert "or-D" not in by_id  # the clicked item itself is no neighbour of itself


def test_explain_sources_add_up_to_the_score() -> None:
    feed = cf_serving.recommend(tiny_model(), UserState(history={"or-A": 2.0}, clicks=["or-D"]), 6)
    for scored in feed.items:
        assert sum(scored.sources.values()) == pytest.approx(scored.score, abs=1e-5)
    assert [s.score for s in feed.items] == sorted((s.score for s in feed.items), reverse=True)


def test_items_the_catalog_does_not_serve_are_dropped_and_the_list_is_filled() -> None:
    feed = cf_serving.recommend(tiny_model(), UserState(), 3, known=lambda item: item != "or-F")
    assert ids(feed) == ["or-E", "or-B", "or-A"]


def test_reason_is_the_largest_source() -> None:
    assert cf_serving.reason_of({"repeat": 0.2, "als": 0.5, "popularity": 0.01}) == "als"
    assert cf_serving.reason_of({}) == "popularity"


def test_click_neighbours_decay_with_click_recency() -> None:
    scores = cf_serving.click_neighbours(tiny_model(), ["or-A", "or-D"])
    assert scores["or-B"] > scores["or-E"]
    assert "or-A" not in scores and "or-D" not in scores


def test_newer_version_is_picked_up_and_a_broken_one_keeps_the_old(tmp_path: Path) -> None:
    models = CfModels(tmp_path, ["retail", "flipkart"])
    assert models.refresh() == []
    assert models.status()["versions"] == {"retail": None, "flipkart": None}
    cf.save(tiny_model("cf-v20261201T000000Z"), tmp_path)
    assert models.refresh() == ["retail"]
    assert models.version("retail") == "cf-v20261201T000000Z"
    assert models.refresh() == []  # nothing newer
    newer = cf.save(tiny_model("cf-v20261201T000100Z"), tmp_path)
    assert models.refresh() == ["retail"]
    assert models.version("retail") == "cf-v20261201T000100Z"
    # a newer directory whose arrays are missing: logged, the served model stays
    broken = newer.with_name("cf-v20261201T000200Z")
    broken.mkdir()
    (broken / "meta.json").write_text(json.dumps({"version": broken.name}), encoding="utf-8")
    assert models.refresh() == []
    assert models.version("retail") == "cf-v20261201T000100Z"
    assert models.status()["failed"] == {"retail": "cf-v20261201T000200Z"}


@pytest.mark.parametrize("history", [{}, {"or-A": 2.0}, {"or-A": 1.0, "or-E": 3.0, "or-Z": 1.0}])
def test_without_clicks_the_feed_is_what_the_offline_evaluation_scores(history: dict[str, float]) -> None:
    model = tiny_model()
    served = cf_serving.recommend(model, UserState(history=dict(history)), 4, exclude=["or-B"])
    assert [(s.item_id, s.score) for s in served.items] == [
        (item, pytest.approx(score, abs=1e-5)) for item, score in model.recommend(history, 4, exclude=["or-B"])]
