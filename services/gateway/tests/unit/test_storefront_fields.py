"""What the storefront page reads from /v1/recommendations: the retriever's facet counts passed through, and
with ``explain: true`` each item's constraints met."""

import json

import httpx
import pytest

from pickwise_common.public_api import RecommendationRequest
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.variants import Variant

pytestmark = pytest.mark.unit

VARIANT_A = Variant("A", "weighted", 0.3)
FACETS = {"brand": [{"value": "Samsung", "label": "Samsung", "count": 4}],
          "price": [{"value": "10000-15000", "label": "₹10,000 – ₹15,000", "count": 3},
                    {"value": "15000-20000", "label": "₹15,000 – ₹20,000", "count": 1}]}


def _with_facets_and_verdicts(fakes):
    plain = fakes.retriever

    def retriever(request: httpx.Request) -> httpx.Response:
        body = json.loads(plain(request).content)
        body["facets"] = FACETS
        for n, candidate in enumerate(body["candidates"]):
            candidate["satisfies"] = {"brands": True, "price_max_inr": n % 2 == 0}
        return httpx.Response(200, json=body)

    fakes.handlers["retriever"] = retriever
    return Recommender(GatewaySettings(), fakes.clients(), redis=None)


async def test_facets_of_the_candidate_pool_reach_the_response(fakes) -> None:
    response = await _with_facets_and_verdicts(fakes).recommend(
        RecommendationRequest(query="samsung under 20k", k=2), request_id="r1", variant=VARIANT_A)
    assert len(response.items) == 2
    assert {name: [(v.value, v.count) for v in values] for name, values in response.facets.items()} == {
        "brand": [("Samsung", 4)], "price": [("10000-15000", 3), ("15000-20000", 1)]}


async def test_explain_shows_the_constraints_each_item_meets(fakes) -> None:
    response = await _with_facets_and_verdicts(fakes).recommend(
        RecommendationRequest(query="samsung under 20k", k=4, explain=True), request_id="r1", variant=VARIANT_A)
    verdicts = {i.item_id: i.satisfies for i in response.items}
    assert verdicts == {"d": {"brands": True, "price_max_inr": False}, "c": {"brands": True, "price_max_inr": True},
                        "b": {"brands": True, "price_max_inr": False}, "a": {"brands": True, "price_max_inr": True}}


async def test_without_explain_there_are_no_verdicts(fakes) -> None:
    response = await _with_facets_and_verdicts(fakes).recommend(
        RecommendationRequest(query="samsung under 20k", k=2), request_id="r1", variant=VARIANT_A)
    assert all(i.satisfies is None for i in response.items)


async def test_reranker_down_still_explains_and_keeps_facets(fakes) -> None:
    recommender = _with_facets_and_verdicts(fakes)
    fakes.handlers["reranker"] = fakes.refuse
    response = await recommender.recommend(
        RecommendationRequest(query="samsung under 20k", k=2, explain=True), request_id="r1", variant=VARIANT_A)
    assert response.degradation_reasons[:1] == ["reranker_unavailable"]
    assert response.items[0].satisfies == {"brands": True, "price_max_inr": True}
    assert set(response.facets) == {"brand", "price"}
