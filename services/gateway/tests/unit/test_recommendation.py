"""The orchestration of /v1/recommendations against scripted downstreams: order of hops, what each
failure degrades to, and the citation check."""

import asyncio
import gc
import json

import httpx
import pytest

from pickwise_common.errors import DependencyUnavailable, InvalidInput
from pickwise_common.public_api import RecommendationRequest
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.recommendation import Budget, Recommender
from pickwise_gateway.variants import Variant

pytestmark = pytest.mark.unit

VARIANT_A = Variant("A", "weighted", 0.3)


def recommender(fakes, **settings) -> Recommender:
    return Recommender(GatewaySettings(**settings), fakes.clients(), redis=None)


async def test_happy_path_returns_reranked_items_with_answer_and_timings(fakes) -> None:
    response = await recommender(fakes).recommend(
        RecommendationRequest(query="samsung under 20k", k=3), request_id="r1", variant=VARIANT_A)
    assert [i.item_id for i in response.items] == ["d", "c", "b"]
    assert [i.rank for i in response.items] == [1, 2, 3]
    assert response.parsed.price_max_inr == 20000
    assert response.answer is not None and response.answer.provider == "groq"
    assert [p.item_id for p in response.answer.picks] == ["d", "c"]
    assert response.degraded is False and response.degradation_reasons == []
    assert {"retrieve", "rerank", "generate", "total", "retrieve.bm25", "rerank.ranker"} <= set(response.timings_ms)


async def test_variant_fusion_is_sent_to_the_retriever(fakes) -> None:
    await recommender(fakes).recommend(RecommendationRequest(query="phone"), request_id="r1",
                                       variant=Variant("B", "rrf", 0.5))
    sent = json.loads(fakes.seen["retriever"][0].content)
    assert sent["fusion"] == "rrf" and sent["alpha"] == 0.5


async def test_explicit_filters_and_previous_turn_reach_the_retriever(fakes) -> None:
    request = RecommendationRequest(query="cheaper", session_id="s1", filters={"ram_gb_min": 6})
    await recommender(fakes).recommend(request, request_id="r1", variant=VARIANT_A)
    sent = json.loads(fakes.seen["retriever"][0].content)
    assert sent["filters"]["ram_gb_min"] == 6
    assert sent["previous"]["brands"] == ["samsung"]


async def test_generate_false_skips_the_generator(fakes) -> None:
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", generate=False),
                                                  request_id="r1", variant=VARIANT_A)
    assert response.answer is None
    assert "generator" not in fakes.seen


async def test_reranker_down_serves_fused_order(fakes) -> None:
    fakes.handlers["reranker"] = fakes.refuse
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", k=3), request_id="r1",
                                                  variant=VARIANT_A)
    assert [i.item_id for i in response.items] == ["a", "b", "c"]
    assert response.degraded is True
    assert response.degradation_reasons == ["reranker_unavailable"]


async def test_reranker_without_features_is_reported(fakes) -> None:
    def no_features(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json={"items": [{"item": c["item"], "score": 1.0, "rank": 1}
                                                   for c in body["candidates"][:1]], "features_available": False})

    fakes.handlers["reranker"] = no_features
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone"), request_id="r1",
                                                  variant=VARIANT_A)
    assert response.degradation_reasons == ["features_unavailable"]


async def test_generator_down_gives_a_grounded_template_answer(fakes) -> None:
    fakes.handlers["generator"] = lambda request: httpx.Response(503, json={"error": {"message": "down"}})
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", k=3), request_id="r1",
                                                  variant=VARIANT_A)
    assert response.degradation_reasons == ["generator_unavailable"]
    assert response.answer is not None and response.answer.provider == "gateway-template"
    returned = {i.item_id for i in response.items}
    assert response.answer.picks and {p.item_id for p in response.answer.picks} <= returned


async def test_generator_template_provider_means_llm_offline(fakes) -> None:
    fakes.handlers["generator"] = lambda request: httpx.Response(
        200, json={"summary": "s", "picks": [], "provider": "template", "fallback_reasons": ["no_llm_key"]})
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone"), request_id="r1",
                                                  variant=VARIANT_A)
    assert response.degradation_reasons == ["llm_offline"]


async def test_cited_ids_outside_the_results_are_dropped(fakes) -> None:
    fakes.handlers["generator"] = lambda request: httpx.Response(200, json={
        "summary": "s", "picks": [{"item_id": "d", "why": "ok"}, {"item_id": "invented", "why": "no"}],
        "provider": "groq"})
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", k=2), request_id="r1",
                                                  variant=VARIANT_A)
    assert [p.item_id for p in response.answer.picks] == ["d"]


async def test_session_down_is_skipped(fakes) -> None:
    fakes.handlers["session"] = fakes.refuse
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", session_id="s1"),
                                                  request_id="r1", variant=VARIANT_A)
    assert response.items
    assert response.degradation_reasons == ["session_unavailable"]


async def test_unknown_session_is_not_a_degradation(fakes) -> None:
    fakes.handlers["session"] = lambda request: httpx.Response(404, json={"error": {"message": "no session"}})
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", session_id="s9"),
                                                  request_id="r1", variant=VARIANT_A)
    assert response.degraded is False


async def test_retriever_and_redis_down_is_a_503(fakes) -> None:
    fakes.handlers["retriever"] = fakes.refuse
    with pytest.raises(DependencyUnavailable):
        await recommender(fakes).recommend(RecommendationRequest(query="phone"), request_id="r1",
                                           variant=VARIANT_A)


async def test_retriever_rejecting_input_is_the_clients_error(fakes) -> None:
    fakes.handlers["retriever"] = lambda request: httpx.Response(
        422, json={"error": {"message": "invalid filters", "fields": [{"field": "filters", "message": "x"}]}})
    with pytest.raises(InvalidInput) as caught:
        await recommender(fakes).recommend(RecommendationRequest(query="phone"), request_id="r1",
                                           variant=VARIANT_A)
    assert caught.value.fields[0]["field"] == "filters"


async def test_malformed_reranker_answer_falls_back(fakes) -> None:
    fakes.handlers["reranker"] = lambda request: httpx.Response(200, json={"items": "nonsense"})
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone"), request_id="r1",
                                                  variant=VARIANT_A)
    assert response.degradation_reasons == ["reranker_unavailable"]


async def test_no_results_answer_says_so_without_the_generator(fakes) -> None:
    fakes.retrieve_ids = []
    response = await recommender(fakes).recommend(RecommendationRequest(query="unobtainium phone"),
                                                  request_id="r1", variant=VARIANT_A)
    assert response.items == []
    assert "No products" in response.answer.summary
    assert "generator" not in fakes.seen


def test_budget_hop_is_capped_by_what_is_left() -> None:
    now = [100.0]
    budget = Budget(1000, clock=lambda: now[0])
    assert budget.hop_ms(800) == 800
    now[0] += 0.5
    assert budget.hop_ms(800) == pytest.approx(500)
    assert budget.hop_ms(800, reserve_ms=150) == pytest.approx(350)
    now[0] += 1.0
    assert budget.hop_ms(800) == 0


async def test_identical_retrievals_are_served_from_the_cache(fakes) -> None:
    gateway = recommender(fakes)
    for user in ("u1", "u2"):
        await gateway.recommend(RecommendationRequest(query="phone", user_id=user, generate=False),
                                request_id="r", variant=VARIANT_A)
    assert len(fakes.seen["retriever"]) == 1
    assert len(fakes.seen["reranker"]) == 2  # personalisation still runs per request


async def test_cached_retrievals_hold_no_objects_the_garbage_collector_walks(fakes) -> None:
    gateway = recommender(fakes)
    first = await gateway.recommend(RecommendationRequest(query="phone", generate=False), request_id="r1",
                                    variant=VARIANT_A)
    entries = [value for _, value in gateway.retrievals._entries.values()]
    assert len(entries) == 1 and not gc.is_tracked(entries[0])  # the answer's bytes, not a tree of models
    again = await gateway.recommend(RecommendationRequest(query="phone", generate=False), request_id="r2",
                                    variant=VARIANT_A)
    assert [i.item_id for i in again.items] == [i.item_id for i in first.items]
    assert len(fakes.seen["retriever"]) == 1


async def test_retrieval_cache_can_be_turned_off(fakes) -> None:
    gateway = recommender(fakes, retrieval_cache_ttl_s=0)
    for _ in range(2):
        await gateway.recommend(RecommendationRequest(query="phone", generate=False), request_id="r",
                                variant=VARIANT_A)
    assert len(fakes.seen["retriever"]) == 2


async def test_slow_generator_is_cut_at_its_budget(fakes) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1.0)
        return httpx.Response(200, json={"summary": "late", "picks": [], "provider": "groq"})

    fakes.handlers["generator"] = slow
    response = await recommender(fakes, generator_budget_ms=100).recommend(
        RecommendationRequest(query="phone", k=3), request_id="r1", variant=VARIANT_A)
    assert response.degradation_reasons == ["generator_unavailable"]
    assert response.answer.provider == "gateway-template"


async def test_slow_session_is_skipped_after_its_budget(fakes) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(1.0)
        return httpx.Response(200, json={"turns": []})

    fakes.handlers["session"] = slow
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", session_id="s1"),
                                                  request_id="r1", variant=VARIANT_A)
    assert response.degradation_reasons == ["session_unavailable"]
    assert response.items


async def test_explicit_filters_are_canonicalised_before_the_retriever(fakes) -> None:
    request = RecommendationRequest(query="samsung phone", filters={"brands": ["samsung"], "colors": ["Ocean-Blue"]})
    await recommender(fakes).recommend(request, request_id="r1", variant=VARIANT_A)
    sent = json.loads(fakes.seen["retriever"][0].content)
    assert sent["filters"]["brands"] == ["Samsung"] and sent["filters"]["colors"] == ["ocean blue"]


async def test_a_filter_value_not_understood_never_reaches_a_downstream(fakes) -> None:
    request = RecommendationRequest(query="phone", filters={"colors": ["<script>"]})
    with pytest.raises(InvalidInput) as raised:
        await recommender(fakes).recommend(request, request_id="r1", variant=VARIANT_A)
    assert [f["field"] for f in raised.value.fields] == ["body.filters.colors.0"]
    assert "retriever" not in fakes.seen


async def test_session_answering_a_body_that_is_not_json_is_a_degradation(fakes) -> None:
    fakes.handlers["session"] = lambda request: httpx.Response(200, text="<html>proxy error</html>")
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", session_id="s1"),
                                                  request_id="r1", variant=VARIANT_A)
    assert response.degradation_reasons == ["session_unavailable"]


async def test_session_answering_turns_of_the_wrong_shape_is_a_degradation(fakes) -> None:
    fakes.handlers["session"] = lambda request: httpx.Response(200, json={"turns": "not a list"})
    response = await recommender(fakes).recommend(RecommendationRequest(query="phone", session_id="s1"),
                                                  request_id="r1", variant=VARIANT_A)
    assert response.degradation_reasons == ["session_unavailable"]


async def test_a_bug_of_ours_surfaces_instead_of_passing_for_a_dependency_outage(fakes, monkeypatch) -> None:
    """A TypeError raised by our own code while reading the session is a bug: it must reach the caller (a 500
    in the app), not be recorded as ``session_unavailable``."""
    from pickwise_gateway import recommendation

    def broken(*args, **kwargs):
        raise TypeError("bug in our own code")

    monkeypatch.setattr(recommendation.SessionTurns, "model_validate", broken)
    with pytest.raises(TypeError, match="bug in our own code"):
        await recommender(fakes).recommend(RecommendationRequest(query="phone", session_id="s1"),
                                           request_id="r1", variant=VARIANT_A)
