"""The reranker's stages as plain functions: cross-encoder loading and scoring, the learned ranker's
model files, the behaviour boost formula, and how the base score and final order are formed."""

from __future__ import annotations

import math

import pytest

from pickwise_common.ranking_features import FEATURE_NAMES
from pickwise_common.schemas import Constraints, RerankRequest
from pickwise_reranker import cross_encoder as ce
from pickwise_reranker import learned_ranker
from pickwise_reranker.behaviour_boost import BoostWeights, UserSignals, compute_boosts, popularity_norm
from pickwise_reranker.ranking import Reranker, combine_base, rescale
from pickwise_reranker.served_rankers import RankerSlots

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------ cross-encoder

def test_cross_encoder_scores_one_value_per_item_in_0_1(tiny_cross_encoder, make_candidate):
    scorer = ce.load_configured(str(tiny_cross_encoder), max_length=64, batch_size=4)
    assert scorer is not None
    items = [make_candidate(f"i{n}", price=5_000 + 1_000 * n).item for n in range(10)]
    scores = scorer.score("samsung under 15k", items)
    assert len(scores) == 10
    assert all(0.0 < s < 1.0 for s in scores)
    assert len({round(s, 6) for s in scores}) > 1


def test_cross_encoder_batching_does_not_change_scores(tiny_cross_encoder, make_candidate):
    items = [make_candidate(f"i{n}", brand=b).item for n, b in enumerate(["Samsung", "Apple", "Realme"] * 3)]
    small = ce.load_configured(str(tiny_cross_encoder), max_length=64, batch_size=2).score("phone", items)
    large = ce.load_configured(str(tiny_cross_encoder), max_length=64, batch_size=16).score("phone", items)
    assert small == pytest.approx(large, abs=1e-5)


def test_cross_encoder_score_is_sigmoid_of_the_model_logit(tiny_cross_encoder, make_candidate):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    item = make_candidate("i1").item
    scorer = ce.load_configured(str(tiny_cross_encoder), max_length=64, batch_size=4)
    tok = AutoTokenizer.from_pretrained(tiny_cross_encoder)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder).eval()
    with torch.no_grad():
        logit = model(**tok("samsung", ce.item_text(item), return_tensors="pt")).logits[0, 0].item()
    assert scorer.score("samsung", [item])[0] == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-5)


def test_cross_encoder_max_length_truncates_long_queries(tiny_cross_encoder, make_candidate):
    scorer = ce.load_configured(str(tiny_cross_encoder), max_length=16, batch_size=4)
    scores = scorer.score("phone " * 400, [make_candidate("i1").item])
    assert len(scores) == 1 and 0.0 < scores[0] < 1.0


@pytest.mark.parametrize("name", [None, "", "none", "/no/such/dir", "nobody/no-such-reranker-model"])
def test_absent_or_disabled_cross_encoder_resolves_to_none(name):
    assert ce.resolve_model_path(name) is None
    assert ce.load_configured(name, max_length=64, batch_size=4) is None


def test_directory_without_config_is_not_a_model(tmp_path):
    assert ce.resolve_model_path(str(tmp_path)) is None


# ------------------------------------------------------------------ learned ranker files

def test_newest_ranker_version_is_loaded(tmp_path, ranker_writer):
    ranker_writer(tmp_path, "20260101T000000")
    ranker_writer(tmp_path, "20260202T000000")
    model = learned_ranker.load_newest(tmp_path)
    assert model is not None and model.version == "20260202T000000"


def test_ranker_with_other_feature_names_is_skipped_for_an_older_usable_one(tmp_path, ranker_writer):
    ranker_writer(tmp_path, "20260101T000000")
    ranker_writer(tmp_path, "20260303T000000", feature_names=tuple(reversed(FEATURE_NAMES)))
    model = learned_ranker.load_newest(tmp_path)
    assert model is not None and model.version == "20260101T000000"


def test_corrupt_ranker_file_is_skipped(tmp_path, ranker_writer):
    good = ranker_writer(tmp_path, "20260101T000000")
    bad = tmp_path / "ranker-v20260909T000000.txt"
    bad.write_text("not a model")
    bad.with_suffix(".json").write_text(good.with_suffix(".json").read_text())
    model = learned_ranker.load_newest(tmp_path)
    assert model is not None and model.version == "20260101T000000"


def test_missing_model_dir_means_no_ranker(tmp_path):
    assert learned_ranker.load_newest(tmp_path / "absent") is None


def test_ranker_puts_constraint_satisfying_items_first(tmp_path, ranker_writer, make_candidate):
    model = learned_ranker.load_model(ranker_writer(tmp_path, "1"))
    parsed = Constraints(brands=["Apple"], price_max_inr=20_000)
    good = make_candidate("good", brand="Apple", price=15_000, fused=0.2)
    wrong_brand = make_candidate("brand", brand="Realme", price=15_000, fused=0.9)
    too_dear = make_candidate("dear", brand="Apple", price=45_000, fused=0.8)
    scores = model.score([wrong_brand, too_dear, good], parsed)
    assert scores[2] > scores[0] and scores[2] > scores[1]


# ------------------------------------------------------------------ behaviour boost

def test_clicked_item_gets_the_click_weight(make_candidate):
    cands = [make_candidate("a"), make_candidate("b")]
    boosts = compute_boosts(cands, UserSignals(clicked_items={"a"}), BoostWeights())
    assert boosts[0].clicked and boosts[0].multiplier == pytest.approx(2.0)
    assert not boosts[1].clicked and boosts[1].multiplier == pytest.approx(1.0)


def test_click_on_a_colour_variant_boosts_the_model(make_candidate):
    listed = make_candidate("a", variant_ids=["a-blue"])
    grouped = make_candidate("b", group_id="galaxy-m31")
    boosts = compute_boosts([listed, grouped], UserSignals(clicked_items={"a-blue", "b-red"},
                                                           clicked_groups={"galaxy-m31"}), BoostWeights())
    assert boosts[0].clicked and boosts[1].clicked


def test_affinity_is_normalised_and_weighted_by_brand_and_category(make_candidate):
    samsung, apple = make_candidate("s", brand="Samsung"), make_candidate("a", brand="Apple")
    signals = UserSignals(affinities={"brand:samsung": 4.0, "brand:apple": 1.0, "category:mobile": 2.0})
    boosts = compute_boosts([samsung, apple], signals, BoostWeights())
    assert boosts[0].affinity == pytest.approx(1.0)
    assert boosts[1].affinity == pytest.approx(0.5 * 0.25 + 0.5)
    assert boosts[0].multiplier == pytest.approx(1.2)


def test_popularity_is_log_normalised_to_the_most_popular_item():
    assert popularity_norm(None, 10) == 0.0
    assert popularity_norm(10, 10) == pytest.approx(1.0)
    assert 0.0 < popularity_norm(3, 10) < 1.0


def test_multiplier_is_capped(make_candidate):
    signals = UserSignals(clicked_items={"a"}, affinities={"brand:samsung": 1.0, "category:mobile": 1.0},
                          popularity={"a": 5.0}, popularity_max=5.0)
    boost = compute_boosts([make_candidate("a")], signals, BoostWeights(click=5.0, cap=3.0))[0]
    assert boost.multiplier == pytest.approx(3.0)


# ------------------------------------------------------------------ base score and order

def test_base_is_fused_score_without_models():
    assert combine_base([0.9, 0.1, 0.0], None, None, 0.5) == [0.9, 0.1, 1e-6]


def test_base_without_models_never_rises_down_the_retrieval_list():
    # the retriever ranks a relaxed-constraint or different-size item below a higher fused score
    assert combine_base([0.2, 0.5, 0.1, 0.3, 0.0], None, None, 0.5) == [0.5, 0.5, 0.3, 0.3, 1e-6]


async def test_without_models_and_boosts_the_retrieval_order_stands(make_candidate):
    fused = [0.01, 0.03, 0.02, 0.05, 0.04]
    cands = [make_candidate(f"c{i}", fused=f) for i, f in enumerate(fused)]
    response = await Reranker(weights=BoostWeights()).rerank(RerankRequest(query="phone", candidates=cands, k=5))
    assert [r.item.item_id for r in response.items] == [f"c{i}" for i in range(5)]


@pytest.mark.parametrize(("sort", "keeps"), [("price_asc", True), ("rating_desc", True), ("price_desc", True),
                                              ("relevance", False)])
async def test_a_query_that_asked_for_an_order_keeps_it_whatever_the_boosts(make_candidate, monkeypatch, sort,
                                                                           keeps):
    from pickwise_reranker import ranking

    cands = [make_candidate(f"c{i}", fused=0.05) for i in range(4)]

    async def signals(*_args, **_kwargs):
        return UserSignals(popularity={"c3": 100.0}, popularity_max=100.0)

    monkeypatch.setattr(ranking, "fetch_signals", signals)
    reranker = Reranker(weights=BoostWeights(), redis=object())  # type: ignore[arg-type]
    response = await reranker.rerank(RerankRequest(query="cheapest phone", candidates=cands, k=4,
                                                   parsed=Constraints(sort=sort)))
    ids = [r.item.item_id for r in response.items]
    assert ids == (["c0", "c1", "c2", "c3"] if keeps else ["c3", "c0", "c1", "c2"])


def test_base_mixes_rescaled_ranker_and_cross_encoder():
    base = combine_base([0.1, 0.1], [0.8, 0.4], [5.0, -1.0], 0.25)
    assert base == [pytest.approx(0.75 * 1.0 + 0.25 * 0.8), pytest.approx(0.75 * 0.1 + 0.25 * 0.4)]


def test_ranker_scores_are_rescaled_per_query_keeping_their_order():
    assert rescale([7.0, 5.0, 6.0]) == pytest.approx([1.0, 0.1, 0.55])
    assert rescale([2.0, 2.0]) == [1.0, 1.0] and rescale([]) == []


async def test_without_redis_features_are_unavailable_and_order_is_the_base(make_candidate):
    cands = [make_candidate("a", fused=0.9), make_candidate("b", fused=0.8)]
    reranker = Reranker(weights=BoostWeights())
    response = await reranker.rerank(RerankRequest(query="phone", candidates=cands, k=2, explain=True))
    assert [r.item.item_id for r in response.items] == ["a", "b"]
    assert response.features_available is False
    assert response.cross_encoder is None and response.ranker is None
    assert all(r.boost is not None and r.boost.multiplier == 1.0 for r in response.items)


async def test_rerank_with_models_reports_them_and_scores_every_item(tiny_cross_encoder, tmp_path,
                                                                       ranker_writer, make_candidate):
    reranker = Reranker(weights=BoostWeights(),
                        cross_encoder=ce.load_configured(str(tiny_cross_encoder), max_length=64, batch_size=8),
                        rankers=RankerSlots.of_file(learned_ranker.load_model(ranker_writer(tmp_path, "7"))))
    cands = [make_candidate(f"c{i}", fused=1 - i / 20) for i in range(20)]
    response = await reranker.rerank(RerankRequest(query="samsung under 15k", candidates=cands, k=5,
                                                   parsed=Constraints(price_max_inr=15_000)))
    assert response.cross_encoder == str(tiny_cross_encoder)
    assert response.ranker == "lightgbm-lambdarank:7" and response.ranker_version == "file:7@champion"
    assert [r.rank for r in response.items] == [1, 2, 3, 4, 5]
    assert all(r.cross_encoder_score is not None and r.ranker_score is not None for r in response.items)
    assert all(r.boost is None for r in response.items)
    scores = [r.score for r in response.items]
    assert scores == sorted(scores, reverse=True)
