"""Which ranker answers each alias (decision 1003b), against a fake registry object: champion and challenger
loaded from the registry, the champion answering for a missing challenger, a deleted challenger alias unloading
it, registry failures keeping what is loaded, the file fallback, and the gate (a ranker that did not beat
retrieval order on its validation split serves retrieval order)."""

from __future__ import annotations

import json
import shutil

import pytest

from pickwise_common.schemas import Constraints, RerankRequest
from pickwise_common.settings import REPO_ROOT
from pickwise_common.testing.fake_registry import FakeRegistry
from pickwise_reranker import learned_ranker
from pickwise_reranker.behaviour_boost import BoostWeights
from pickwise_reranker.ranking import Reranker
from pickwise_reranker.served_rankers import REGISTERED_NAME, RankerSlots, gate_of

pytestmark = pytest.mark.unit


@pytest.fixture
def registry(tmp_path, ranker_writer) -> FakeRegistry:
    fake = FakeRegistry(REGISTERED_NAME)
    for version, stamp in (("1", "20260101T000000"), ("2", "20260202T000000")):
        fake.versions[version] = tmp_path / "registry" / version
        ranker_writer(fake.versions[version], stamp)
    fake.aliases["champion"] = "1"
    return fake


def request(make_candidate, alias: str = "champion") -> RerankRequest:
    cands = [make_candidate(f"c{i}", fused=1 - i / 10, price=8_000 + 2_000 * i) for i in range(8)]
    return RerankRequest(query="samsung under 15k", candidates=cands, k=8, ranker_alias=alias,
                         parsed=Constraints(price_max_inr=15_000))


def test_champion_and_challenger_are_loaded_from_their_aliases(registry):
    registry.aliases["challenger"] = "2"
    slots = RankerSlots(model_dir=None, registry=registry)
    assert slots.refresh() == ["champion", "challenger"]
    assert slots.pick("champion").label == "pickwise-ranker/1@champion"
    assert slots.pick("challenger").label == "pickwise-ranker/2@challenger"
    assert slots.pick("challenger").model.version == "20260202T000000"


def test_a_missing_challenger_is_answered_by_the_champion(registry):
    slots = RankerSlots(model_dir=None, registry=registry)
    slots.refresh()
    assert slots.pick("challenger").label == "pickwise-ranker/1@champion"


def test_a_deleted_challenger_alias_unloads_the_challenger(registry):
    registry.aliases["challenger"] = "2"
    slots = RankerSlots(model_dir=None, registry=registry)
    slots.refresh()
    del registry.aliases["challenger"]
    assert slots.refresh() == ["challenger"]
    assert "challenger" not in slots.served
    assert slots.pick("challenger").label == "pickwise-ranker/1@champion"


def test_an_unchanged_alias_is_not_loaded_again(registry):
    slots = RankerSlots(model_dir=None, registry=registry)
    slots.refresh()
    before = slots.pick("champion").model
    assert slots.refresh() == []
    assert slots.pick("champion").model is before
    assert slots.refresh(force=True) == ["champion"]
    assert slots.pick("champion").model is not before


def test_a_moved_champion_alias_swaps_the_champion(registry):
    slots = RankerSlots(model_dir=None, registry=registry)
    slots.refresh()
    registry.aliases["champion"] = "2"
    assert slots.refresh() == ["champion"]
    assert slots.pick("champion").label == "pickwise-ranker/2@champion"


def test_an_unreachable_registry_keeps_the_loaded_rankers(registry):
    registry.aliases["challenger"] = "2"
    slots = RankerSlots(model_dir=None, registry=registry)
    slots.refresh()
    registry.down = True
    assert slots.refresh() == []
    assert slots.pick("champion").label == "pickwise-ranker/1@champion"
    assert slots.pick("challenger").label == "pickwise-ranker/2@challenger"
    assert "connection refused" in slots.status()["errors"]["champion"]
    registry.down = False
    slots.refresh()
    assert slots.status()["errors"] == {}


def test_an_unreachable_registry_at_start_serves_the_newest_file(registry, tmp_path, ranker_writer):
    ranker_writer(tmp_path / "files", "20250505T000000")
    registry.down = True
    slots = RankerSlots(model_dir=tmp_path / "files", registry=registry)
    slots.refresh()
    assert slots.pick("champion").label == "file:20250505T000000@champion"
    registry.down = False
    slots.refresh()
    assert slots.pick("champion").label == "pickwise-ranker/1@champion"


def test_without_a_registered_champion_the_newest_file_is_the_champion(registry, tmp_path, ranker_writer):
    ranker_writer(tmp_path / "files", "20250505T000000")
    del registry.aliases["champion"]
    slots = RankerSlots(model_dir=tmp_path / "files", registry=registry)
    slots.refresh()
    assert slots.pick("champion").label == "file:20250505T000000@champion"
    assert slots.pick("champion").source == "file"


def test_without_a_registry_the_newest_file_is_the_champion_and_no_challenger(tmp_path, ranker_writer):
    ranker_writer(tmp_path, "20260101T000000")
    ranker_writer(tmp_path, "20260303T000000")
    slots = RankerSlots(model_dir=tmp_path)
    slots.refresh()
    assert slots.pick("champion").label == "file:20260303T000000@champion"
    assert slots.pick("challenger").label == "file:20260303T000000@champion"


def test_a_registered_version_that_cannot_load_keeps_the_loaded_one(registry):
    slots = RankerSlots(model_dir=None, registry=registry)
    slots.refresh()
    for path in registry.versions["2"].glob("*.json"):
        path.write_text("{not json")
    registry.aliases["champion"] = "2"
    assert slots.refresh() == []
    assert slots.pick("champion").label == "pickwise-ranker/1@champion"
    assert "pickwise-ranker/2" in slots.status()["errors"]["champion"]


def test_a_fetched_artifact_in_a_subdirectory_is_found(registry):
    nested = registry.versions["2"].parent / "nested" / "model"
    shutil.copytree(registry.versions["2"], nested)
    registry.versions["2"] = nested.parent
    registry.aliases["challenger"] = "2"
    slots = RankerSlots(model_dir=None, registry=registry)
    slots.refresh()
    assert slots.pick("challenger").model.version == "20260202T000000"


# ------------------------------------------------------------------ the gate

def test_the_shipped_ranker_does_not_pass_its_gate():
    meta_path = next((REPO_ROOT / "models" / "ranker").glob("ranker-v*.json"))
    gate = gate_of(json.loads(meta_path.read_text()), {})
    assert gate.passed is False
    assert "0.9189" in gate.reason and "0.9203" in gate.reason


@pytest.mark.parametrize(("validation", "tags", "passed"), [
    ({"ndcg@10_ranker": 0.95, "ndcg@10_retrieval": 0.92}, {}, True),
    ({"ndcg@10_ranker": 0.92, "ndcg@10_retrieval": 0.92}, {}, False),
    ({"ndcg@10_ranker": 0.9189, "ndcg@10_retrieval": 0.9203}, {}, False),
    ({"ndcg@10_ranker": 0.9}, {}, False),
    ({}, {"gate": "passed"}, True),
    ({"ndcg@10_ranker": 0.5, "ndcg@10_retrieval": 0.9}, {"gate": "passed"}, True),
    ({"ndcg@10_ranker": 0.5, "ndcg@10_retrieval": 0.9}, {"gate": "failed"}, False),
])
def test_gate_passes_only_a_ranker_that_beat_retrieval_order_or_a_passed_tag(validation, tags, passed):
    assert gate_of({"validation": validation}, tags).passed is passed


async def test_a_ranker_below_retrieval_order_serves_retrieval_order(tmp_path, ranker_writer, make_candidate):
    model = learned_ranker.load_model(ranker_writer(tmp_path, "9", ndcg_ranker=0.9189, ndcg_retrieval=0.9203,
                                                    reverse=True))
    reranker = Reranker(weights=BoostWeights(), rankers=RankerSlots.of_file(model))
    response = await reranker.rerank(request(make_candidate))
    assert [r.item.item_id for r in response.items] == [f"c{i}" for i in range(8)]
    assert response.ranker is None and all(r.ranker_score is None for r in response.items)
    assert response.ranker_version == "file:9@champion"


async def test_the_same_ranker_tagged_gate_passed_replaces_retrieval_order(tmp_path, ranker_writer,
                                                                          make_candidate):
    model = learned_ranker.load_model(ranker_writer(tmp_path, "9", ndcg_ranker=0.9189, ndcg_retrieval=0.9203,
                                                    reverse=True))
    reranker = Reranker(weights=BoostWeights(), rankers=RankerSlots.of_file(model, tags={"gate": "passed"}))
    response = await reranker.rerank(request(make_candidate))
    assert response.ranker == "lightgbm-lambdarank:9"
    assert [r.item.item_id for r in response.items] != [f"c{i}" for i in range(8)]


async def test_each_request_is_scored_by_the_ranker_of_its_alias(registry, make_candidate):
    registry.aliases["challenger"] = "2"
    reranker = Reranker(weights=BoostWeights(), rankers=RankerSlots(model_dir=None, registry=registry))
    reranker.rankers.refresh()
    champion = await reranker.rerank(request(make_candidate, "champion"))
    challenger = await reranker.rerank(request(make_candidate, "challenger"))
    assert champion.ranker_version == "pickwise-ranker/1@champion"
    assert champion.ranker == "lightgbm-lambdarank:20260101T000000"
    assert challenger.ranker_version == "pickwise-ranker/2@challenger"
    assert challenger.ranker == "lightgbm-lambdarank:20260202T000000"


async def test_without_any_ranker_the_version_is_null(make_candidate):
    response = await Reranker(weights=BoostWeights()).rerank(request(make_candidate, "challenger"))
    assert response.ranker is None and response.ranker_version is None


def test_feature_buffer_is_reused_and_grown_per_thread():
    small = learned_ranker.feature_buffer(3, 5)
    again = learned_ranker.feature_buffer(10, 5)
    assert again.base is small.base and again.flags.c_contiguous and again.dtype.name == "float64"
    grown = learned_ranker.feature_buffer(1000, 5)
    assert grown.shape == (1000, 5) and grown.base is not small.base
