"""The learned ranker's feature rows (shared by training and serving)."""

from __future__ import annotations

import math

import pytest

from pickwise_common.constraints import feature_verdicts
from pickwise_common.ranking_features import FEATURE_NAMES, extract_features
from pickwise_common.schemas import Candidate, Constraints, Item

pytestmark = pytest.mark.unit


def cand(item_id: str, *, brand: str = "Samsung", price: float = 10_000, rating: float | None = 4.0,
         fused: float = 0.5, bm25: float | None = 1.0, satisfies: dict[str, bool] | None = None,
         ram_gb: float | None = 4) -> Candidate:
    item = Item(item_id=item_id, title=item_id, brand=brand, model=item_id, price_inr=price, rating=rating,
                ram_gb=ram_gb, storage_gb=64, discount_pct=20, price_band="mid", group_id=item_id)
    return Candidate(item=item, fused_score=fused, bm25_score=bm25, dense_score=0.3, satisfies=satisfies or {})


def col(rows: list[list[float]], name: str) -> list[float]:
    index = FEATURE_NAMES.index(name)
    return [row[index] for row in rows]


def test_one_row_per_candidate_with_every_feature():
    rows = extract_features([cand("a"), cand("b"), cand("c")], None)
    assert len(rows) == 3 and all(len(r) == len(FEATURE_NAMES) for r in rows)


def test_no_candidates_no_rows():
    assert extract_features([], Constraints()) == []


def test_unasked_constraint_is_missing_not_violated():
    rows = extract_features([cand("a")], Constraints())
    assert math.isnan(col(rows, "sat_brand")[0]) and math.isnan(col(rows, "sat_all")[0])
    assert col(rows, "n_constraints") == [0.0]


def test_constraints_are_computed_from_the_item_when_the_retriever_gave_no_verdict():
    parsed = Constraints(brands=["samsung"], price_max_inr=15_000)
    rows = extract_features([cand("a", price=12_000), cand("b", brand="Apple", price=20_000)], parsed)
    assert col(rows, "sat_brand") == [1.0, 0.0]
    assert col(rows, "sat_price_max") == [1.0, 0.0]
    assert col(rows, "sat_all") == [1.0, 0.0]
    assert col(rows, "n_constraints") == [2.0, 2.0]


def test_verdict_is_the_shared_constraint_models_not_a_copy_sent_along():
    parsed = Constraints(brands=["Samsung"])
    rows = extract_features([cand("a", satisfies={"brands": False})], parsed)
    assert col(rows, "sat_brand") == [1.0]


def test_scores_are_min_max_normalised_per_query():
    rows = extract_features([cand("a", fused=0.2, bm25=2), cand("b", fused=0.6, bm25=None),
                             cand("c", fused=1.0, bm25=6)], None)
    assert col(rows, "fused_norm") == pytest.approx([0.0, 0.5, 1.0])
    assert col(rows, "bm25_norm")[0] == 0.0 and math.isnan(col(rows, "bm25_norm")[1])
    assert col(rows, "retrieval_rank_frac") == pytest.approx([0.0, 0.5, 1.0])


def test_price_position_among_candidates_and_in_the_asked_range():
    parsed = Constraints(price_min_inr=10_000, price_max_inr=20_000)
    rows = extract_features([cand("a", price=15_000), cand("b", price=10_000), cand("c", price=20_000)], parsed)
    assert col(rows, "price_pct_in_candidates") == pytest.approx([0.5, 0.0, 1.0])
    assert col(rows, "price_pos_in_range") == pytest.approx([0.5, 0.0, 1.0])


def test_sort_intent_is_one_hot():
    rows = extract_features([cand("a")], Constraints(sort="price_asc"))
    assert col(rows, "sort_price_asc") == [1.0] and col(rows, "sort_relevance") == [0.0]


@pytest.mark.parametrize(("dim", "parsed", "expected"), [
    ("ram", Constraints(ram_gb_min=6), False),
    ("ram", Constraints(ram_gb_min=4, ram_gb_max=8), True),
    ("rating", Constraints(rating_min=4.5), False),
    ("discount", Constraints(discount_pct_min=15), True),
    ("feature_phone", Constraints(feature_phone=True), False),
    ("price_band", Constraints(price_bands=["mid"]), True),
    ("storage", Constraints(), None),
])
def test_constraint_holds(dim, parsed, expected):
    assert feature_verdicts(cand("a").item, parsed)[dim] is expected


def test_missing_rating_fails_a_rating_constraint():
    assert feature_verdicts(cand("a", rating=None).item, Constraints(rating_min=4))["rating"] is False
