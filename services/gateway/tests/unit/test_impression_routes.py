"""What the routes put on the impression queue (no drain task here, so the queued events can be read), the
request id on every logged response, exploration, the challenger ranker and interleaving through the routes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.exploration import RandPair, apply
from pickwise_gateway.impressions import ImpressionLog
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.session_events import SessionEventPublisher

pytestmark = pytest.mark.unit
KEY = "impressions-key"


class Producer:
    async def send_raw(self, topic, value, *, key=None, headers=None):
        raise AssertionError("no drain task runs in these tests")


def _app(fakes, **overrides: Any):
    settings = GatewaySettings(api_keys=KEY, environment="local", **overrides)
    app = create_app(settings)
    app.state.clients = fakes.clients()
    app.state.redis = None
    app.state.recommender = Recommender(settings, app.state.clients, redis=None)
    app.state.impressions = ImpressionLog(queue_max=100, producer=Producer())
    app.state.session_events = SessionEventPublisher(None)
    return app


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw", headers={"X-API-Key": KEY})


def _queued(app) -> list[Any]:
    queue = app.state.impressions.queue
    return [queue.get_nowait() for _ in range(queue.qsize())]


def _versioned_reranker(order_by_alias: dict[str, list[str]] | None = None):
    """A reranker that says which alias scored; each alias can rank the candidates its own way."""
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        alias = body.get("ranker_alias", "champion")
        by_id = {c["item"]["item_id"]: c for c in body["candidates"]}
        ids = (order_by_alias or {}).get(alias) or list(reversed(by_id))
        return httpx.Response(200, json={"items": [
            {"item": by_id[i]["item"], "score": 10 - r, "rank": r + 1} for r, i in enumerate(ids[:body["k"]])],
            "ranker_version": f"pickwise-ranker/{7 if alias == 'challenger' else 3}@{alias}",
            "features_available": True})
    return handle


async def test_search_queues_one_impression_of_the_page_with_the_request_id(fakes) -> None:
    app = _app(fakes, exploration_share=0.0, challenger_share=0.0)
    async with _client(app) as client:
        response = await client.get("/v1/search", params={"q": "samsung", "k": 3, "user_id": "u1"})
    body = response.json()
    [impression] = _queued(app)
    assert impression.request_id == body["request_id"] == response.headers["x-request-id"]
    assert impression.endpoint == "search" and impression.user_id == "u1" and impression.variant == body["variant"]
    assert [(i.item_id, i.position, i.score) for i in impression.items] == [
        (i["item_id"], i["rank"] - 1, i["score"]) for i in body["items"]]
    assert impression.experiment == "ab" and impression.status == 200
    assert impression.latency_ms == body["timings_ms"]["total"]


async def test_impressions_switched_off_queue_nothing_and_the_page_is_unchanged(fakes) -> None:
    def retriever(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/similar"):
            return httpx.Response(200, json={"item_id": "or-A", "candidates": [
                {"item": fakes.item("or-B"), "fused_score": 0.7}], "source": "cf", "model_version": "cf-v1"})
        return default_retriever(request)
    default_retriever = fakes.handlers["retriever"]
    fakes.handlers["retriever"] = retriever
    app = _app(fakes, exploration_share=0.0, challenger_share=0.0)
    app.state.impressions = ImpressionLog(queue_max=100, producer=Producer(), enabled=False)
    async with _client(app) as client:
        search = await client.get("/v1/search", params={"q": "samsung", "k": 3, "user_id": "u1"})
        similar = await client.get("/v1/items/or-A/similar", params={"catalog": "retail"})
    assert search.status_code == 200 and search.json()["items"] and search.json()["request_id"]
    assert similar.status_code == 200 and similar.json()["request_id"]
    assert _queued(app) == []


async def test_recommendations_log_the_recommendations_endpoint(fakes) -> None:
    app = _app(fakes)
    async with _client(app) as client:
        response = await client.post("/v1/recommendations", json={"query": "samsung", "k": 2, "session_id": "s9"})
    [impression] = _queued(app)
    assert (impression.endpoint, impression.session_id, impression.request_id) == (
        "recommendations", "s9", response.json()["request_id"])


async def test_explored_page_shows_the_pair_as_recorded_and_ranks_follow_it(fakes) -> None:
    fakes.retrieve_ids = [f"i{n}" for n in range(12)]
    app = _app(fakes, exploration_share=1.0, challenger_share=0.0)
    swapped = 0
    async with _client(app) as client:
        for _ in range(12):
            body = (await client.get("/v1/search", params={"q": "samsung", "k": 10})).json()
            [impression] = _queued(app)
            choice = RandPair(pair=impression.explore["pair"], swapped=bool(impression.explore["swapped"]))
            ranked = [f"i{n}" for n in reversed(range(12))][:10]  # the fake reranker reverses the candidates
            assert [i["item_id"] for i in body["items"]] == apply(ranked, choice)
            assert [i["rank"] for i in body["items"]] == list(range(1, 11))
            assert [i.item_id for i in impression.items] == [i["item_id"] for i in body["items"]]
            swapped += choice.swapped
    assert 0 < swapped < 12


async def test_challenger_shoppers_are_scored_by_the_challenger_and_its_version_is_reported(fakes) -> None:
    fakes.handlers["reranker"] = _versioned_reranker()
    app = _app(fakes, challenger_share=1.0)
    async with _client(app) as client:
        body = (await client.get("/v1/search", params={"q": "samsung", "user_id": "u1"})).json()
    assert json.loads(fakes.seen["reranker"][0].content)["ranker_alias"] == "challenger"
    assert body["variant"] == "challenger"
    assert body["model_versions"] == {"ranker": "pickwise-ranker/7@challenger"}
    assert _queued(app)[0].model_versions == {"ranker": "pickwise-ranker/7@challenger"}


async def test_challenger_shoppers_count_as_control_when_the_champion_answered(fakes) -> None:
    def champion_only(request: httpx.Request) -> httpx.Response:
        answer = _versioned_reranker()(request)
        body = json.loads(answer.content)
        return httpx.Response(200, json=body | {"ranker_version": "pickwise-ranker/3@champion"})
    fakes.handlers["reranker"] = champion_only
    app = _app(fakes, challenger_share=1.0)
    async with _client(app) as client:
        body = (await client.get("/v1/search", params={"q": "samsung", "user_id": "u1"})).json()
    assert body["variant"] == "A"
    assert _queued(app)[0].variant == "A"


async def test_interleaved_page_is_a_team_draft_of_both_rankers(fakes) -> None:
    fakes.retrieve_ids = ["a", "b", "c", "d", "e", "f"]
    fakes.handlers["reranker"] = _versioned_reranker({"champion": ["a", "b", "c", "d", "e", "f"],
                                                       "challenger": ["f", "e", "d", "c", "b", "a"]})
    app = _app(fakes, interleaving=True, interleaving_share=1.0, exploration_share=1.0)
    async with _client(app) as client:
        body = (await client.get("/v1/search", params={"q": "samsung", "k": 4, "user_id": "u1"})).json()
    aliases = sorted(json.loads(r.content)["ranker_alias"] for r in fakes.seen["reranker"])
    assert aliases == ["challenger", "champion"]
    [impression] = _queued(app)
    assert impression.interleaving and impression.variant == "interleaved" and impression.explore is None
    shown = [(i.item_id, i.team) for i in impression.items]
    assert sorted(shown) == sorted([("a", "A"), ("b", "A"), ("e", "B"), ("f", "B")])
    assert [i["item_id"] for i in body["items"]] == [i for i, _ in shown]
    assert body["model_versions"] == {"ranker": "pickwise-ranker/3@champion",
                                      "ranker_b": "pickwise-ranker/7@challenger"}


async def test_a_failed_search_logs_an_impression_with_its_status(fakes) -> None:
    fakes.handlers["retriever"] = fakes.refuse
    app = _app(fakes)
    async with _client(app) as client:
        response = await client.get("/v1/search", params={"q": "samsung", "user_id": "u1"})
    assert response.status_code == 503
    [impression] = _queued(app)
    assert (impression.status, impression.items, impression.user_id) == (503, [], "u1")


async def test_feed_carries_a_request_id_and_logs_its_items_and_cf_version(fakes) -> None:
    answer = {"catalog": "retail", "user_id": "17850", "model_version": "cf-v1", "cold_start": False,
              "items": [{"item": fakes.item(i, catalog="retail"), "score": 1.0 - n / 10, "reason": "als"}
                        for n, i in enumerate(["or-A", "or-B"])]}
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json=answer)
    app = _app(fakes)
    async with _client(app) as client:
        response = await client.get("/v1/users/17850/recommendations", params={"catalog": "retail"})
    body = response.json()
    [impression] = _queued(app)
    assert body["request_id"] == impression.request_id == response.headers["x-request-id"]
    assert (impression.endpoint, impression.user_id, impression.model_versions) == ("feed", "17850", {"cf": "cf-v1"})
    assert [(i.item_id, i.position) for i in impression.items] == [("or-A", 0), ("or-B", 1)]


async def test_similar_and_bought_together_carry_a_request_id_and_log_their_lists(fakes) -> None:
    def retriever(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/similar"):
            return httpx.Response(200, json={"item_id": "or-A", "candidates": [
                {"item": fakes.item("or-B"), "fused_score": 0.7}], "source": "cf", "model_version": "cf-v1"})
        return httpx.Response(200, json={"item_id": "or-A", "catalog": "retail", "model_version": "cf-v1",
                                         "items": [{"item": fakes.item("or-C"), "lift": 4.0, "npmi": 0.3,
                                                    "support": 5}]})
    fakes.handlers["retriever"] = retriever
    app = _app(fakes)
    async with _client(app) as client:
        similar = await client.get("/v1/items/or-A/similar", params={"catalog": "retail"})
        together = await client.get("/v1/items/or-A/bought-together", params={"catalog": "retail"})
    first, second = _queued(app)
    assert (first.endpoint, first.request_id, [(i.item_id, i.score) for i in first.items]) == (
        "similar", similar.json()["request_id"], [("or-B", 0.7)])
    assert (second.endpoint, second.request_id, [(i.item_id, i.score) for i in second.items]) == (
        "bought_together", together.json()["request_id"], [("or-C", 4.0)])


async def test_a_retriever_404_on_similar_is_passed_through_without_an_impression(fakes) -> None:
    fakes.handlers["retriever"] = lambda request: httpx.Response(
        404, json={"error": {"code": "not_found", "message": "no such item"}})
    app = _app(fakes)
    async with _client(app) as client:
        response = await client.get("/v1/items/or-Z/similar", params={"catalog": "retail"})
    assert response.status_code == 404
    assert _queued(app) == []


async def test_explain_responses_are_never_explored(fakes) -> None:
    fakes.retrieve_ids = [f"i{n}" for n in range(12)]
    app = _app(fakes, exploration_share=1.0, challenger_share=0.0)
    async with _client(app) as client:
        for _ in range(5):
            body = (await client.post("/v1/recommendations", json={"query": "samsung", "k": 10, "explain": True,
                                                                   "generate": False})).json()
            assert [i["item_id"] for i in body["items"]] == [f"i{n}" for n in reversed(range(12))][:10]
            assert _queued(app)[0].explore is None


class ShownHash:
    """The one Redis read the CF feed makes for the over-shown filter (HGETALL of the user's shown hash)."""

    def __init__(self, shown: dict[str, str]) -> None:
        self.shown = shown

    async def hgetall(self, key: str) -> dict[str, str]:
        return self.shown if key.endswith(":shown") else {}


async def test_feed_asks_cf_to_leave_out_items_shown_too_often(fakes) -> None:
    answer = {"catalog": "retail", "user_id": "17850", "model_version": "cf-v1", "cold_start": False,
              "items": [{"item": fakes.item("or-B", catalog="retail"), "score": 0.5, "reason": "als"}]}
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json=answer)
    app = _app(fakes, overshown_after=8)
    app.state.redis = ShownHash({"or-X": "9", "or-Y": "2", "or-Z": "8"})
    async with _client(app) as client:
        response = await client.get("/v1/users/17850/recommendations", params={"catalog": "retail"})
    assert response.status_code == 200
    asked = json.loads(fakes.seen["retriever"][0].content)
    assert asked["exclude_item_ids"] == ["or-X", "or-Z"]
