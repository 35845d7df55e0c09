"""The content feed (a catalog without a CF model) against scripted downstreams (no network): which calls it
makes for a known user, what a cold user gets, and degradation when the session service is down."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings

pytestmark = pytest.mark.unit
KEY = "feed-key"


def _feed_client(fakes) -> httpx.AsyncClient:
    app = create_app(GatewaySettings(api_keys=KEY, environment="local"))
    app.state.clients = fakes.clients()
    app.state.redis = None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                             headers={"X-API-Key": KEY})


def _retriever(fakes, similar: dict[str, list[str]], popular: list[str]):
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/cf/recommend":  # no CF model for the catalog: the content feed answers
            return httpx.Response(200, json={"catalog": "flipkart", "user_id": "u", "model_version": None,
                                             "cold_start": True, "items": []})
        if path == "/v1/popular":
            return httpx.Response(200, json={"source": "all", "candidates": [
                {"item": fakes.item(i), "fused_score": 1.0} for i in popular]})
        seed = path.split("/")[3]
        return httpx.Response(200, json={"item_id": seed, "candidates": [
            {"item": fakes.item(i), "fused_score": 1.0} for i in similar.get(seed, [])]})
    return handle


def _session(features: dict[str, Any], bought: list[str]):
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/features"):
            return httpx.Response(200, json=features)
        return httpx.Response(200, json={"user_id": "u", "events": [
            {"event_id": str(n), "type": "purchase", "user_id": "u", "item_id": i, "ts": "2026-01-01T00:00:00Z",
             "received_at": "2026-01-01T00:00:00Z"} for n, i in enumerate(bought)]})
    return handle


async def test_known_user_gets_neighbours_of_recent_clicks_minus_purchases(fakes) -> None:
    fakes.handlers["retriever"] = _retriever(fakes, {"c1": ["n1", "bought", "n2"], "c2": ["n3"]}, ["p1", "p2"])
    fakes.handlers["session"] = _session({"user_id": "u", "recent_clicks": ["c1", "c2"],
                                          "affinities": {"brand:samsung": 1.0}}, ["bought"])
    async with _feed_client(fakes) as client:
        body = (await client.get("/v1/users/u/recommendations", params={"k": 4})).json()

    ids = [i["item"]["item_id"] for i in body["items"]]
    assert ids == ["n1", "n3", "n2", "p1"]  # newest click first, then rank; popularity fills
    assert body["cold_start"] is False and body["degraded"] is False
    assert [r.url.params.get("type") for r in fakes.seen["session"] if r.url.path.endswith("/events")] == ["purchase"]


async def test_new_user_gets_global_popularity(fakes) -> None:
    fakes.handlers["retriever"] = _retriever(fakes, {}, ["p1", "p2", "p3"])
    fakes.handlers["session"] = _session({"user_id": "new"}, [])
    async with _feed_client(fakes) as client:
        body = (await client.get("/v1/users/new/recommendations", params={"k": 3})).json()

    assert body["cold_start"] is True
    assert [(i["item"]["item_id"], i["reason"]) for i in body["items"]] == [
        ("p1", "popular"), ("p2", "popular"), ("p3", "popular")]


async def test_session_down_degrades_to_popularity(fakes) -> None:
    fakes.handlers["retriever"] = _retriever(fakes, {}, ["p1"])
    fakes.handlers["session"] = fakes.refuse
    async with _feed_client(fakes) as client:
        response = await client.get("/v1/users/u/recommendations", params={"k": 1})

    assert response.status_code == 200
    assert response.json()["degradation_reasons"] == ["session_unavailable"]
    assert [i["item"]["item_id"] for i in response.json()["items"]] == ["p1"]


async def test_bad_k_and_user_id_are_422_naming_the_field(fakes) -> None:
    async with _feed_client(fakes) as client:
        response = await client.get("/v1/users/bad%20id/recommendations", params={"k": 0})
    assert response.status_code == 422
    assert {f["field"] for f in response.json()["error"]["fields"]} == {"path.user_id", "query.k"}
