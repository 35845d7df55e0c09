"""``GET /v1/users/{id}/recommendations`` and ``/v1/items/{id}/bought-together`` against a scripted retriever (no
network): the CF answer passed through with its version and cold start, explain, k bounds, the content feed
when the catalog has no CF model or the retriever cannot answer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings

pytestmark = pytest.mark.unit
KEY = "cf-key"


def _client(fakes) -> httpx.AsyncClient:
    app = create_app(GatewaySettings(api_keys=KEY, environment="local"))
    app.state.clients = fakes.clients()
    app.state.redis = None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                             headers={"X-API-Key": KEY})


def _cf_answer(fakes, ids: list[str], *, cold: bool = False, version: str | None = "cf-v20261201T000000Z",
               degraded: list[str] | None = None) -> dict[str, Any]:
    return {"catalog": "retail", "user_id": "17850", "model_version": version, "cold_start": cold,
            "degradation_reasons": degraded or [], "degraded": bool(degraded),
            "items": [{"item": fakes.item(i, catalog="retail", currency="GBP", price=2.5), "score": 1.0 - n / 10,
                       "reason": "repeat", "sources": {"repeat": 0.6, "als": 0.4 - n / 10}}
                      for n, i in enumerate(ids)],
            "timings_ms": {"user_state": 0.4, "blend": 1.1}}


async def test_cf_feed_passes_items_version_and_catalog_and_asks_with_the_users_request(fakes) -> None:
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json=_cf_answer(fakes, ["or-A", "or-B"]))
    async with _client(fakes) as client:
        response = await client.get("/v1/users/17850/recommendations", params={"catalog": "retail", "k": 2})
    body = response.json()
    assert response.status_code == 200
    assert [i["item"]["item_id"] for i in body["items"]] == ["or-A", "or-B"]
    assert body["model_version"] == "cf-v20261201T000000Z"
    assert body["catalog"] == "retail" and body["cold_start"] is False and body["degraded"] is False
    assert all(i["sources"] is None for i in body["items"])  # no explain asked
    sent = json.loads(fakes.seen["retriever"][0].content)
    assert sent == {"catalog": "retail", "user_id": "17850", "k": 2, "explain": False, "exclude_item_ids": []}


async def test_explain_lists_each_items_sources(fakes) -> None:
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json=_cf_answer(fakes, ["or-A"]))
    async with _client(fakes) as client:
        body = (await client.get("/v1/users/17850/recommendations",
                                 params={"catalog": "retail", "explain": "true"})).json()
    assert body["items"][0]["sources"] == {"repeat": 0.6, "als": 0.4}
    assert body["items"][0]["reason"] == "repeat"


async def test_cold_start_and_retriever_degradation_are_passed_on(fakes) -> None:
    answer = _cf_answer(fakes, ["or-P"], cold=True, degraded=["features_unavailable"])
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json=answer)
    async with _client(fakes) as client:
        body = (await client.get("/v1/users/nobody/recommendations", params={"catalog": "retail"})).json()
    assert body["cold_start"] is True
    assert body["degradation_reasons"] == ["features_unavailable"] and body["degraded"] is True


@pytest.mark.parametrize("k", [0, 101, "many"])
async def test_k_out_of_range_is_422_naming_k(fakes, k: Any) -> None:
    async with _client(fakes) as client:
        response = await client.get("/v1/users/u1/recommendations", params={"k": k})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "query.k"
    assert "retriever" not in fakes.seen


async def test_k_of_100_is_served(fakes) -> None:
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json=_cf_answer(fakes, ["or-A"]))
    async with _client(fakes) as client:
        response = await client.get("/v1/users/u1/recommendations", params={"k": 100, "catalog": "retail"})
    assert response.status_code == 200
    assert json.loads(fakes.seen["retriever"][0].content)["k"] == 100


async def test_unknown_catalog_is_404(fakes) -> None:
    async with _client(fakes) as client:
        response = await client.get("/v1/users/u1/recommendations", params={"catalog": "books"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_catalog"


def _content_retriever(fakes, *, cf: httpx.Response | None):
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/cf/recommend":
            return cf if cf is not None else httpx.Response(503, json={"error": {"code": "down"}})
        return httpx.Response(200, json={"source": "all", "candidates": [
            {"item": fakes.item(i), "fused_score": 1.0} for i in ("p1", "p2")]})
    return handle


async def test_no_cf_model_serves_the_content_feed(fakes) -> None:
    fakes.handlers["retriever"] = _content_retriever(fakes, cf=httpx.Response(200, json=_cf_answer(
        fakes, [], cold=True, version=None)))
    fakes.handlers["session"] = lambda request: httpx.Response(404, json={"error": {"code": "not_found"}})
    async with _client(fakes) as client:
        body = (await client.get("/v1/users/u1/recommendations", params={"k": 2})).json()
    assert [i["item"]["item_id"] for i in body["items"]] == ["p1", "p2"]
    assert body["model_version"] is None and body["degraded"] is False


async def test_retriever_cf_down_degrades_to_the_content_feed(fakes) -> None:
    fakes.handlers["retriever"] = _content_retriever(fakes, cf=None)
    fakes.handlers["session"] = lambda request: httpx.Response(404, json={"error": {"code": "not_found"}})
    async with _client(fakes) as client:
        response = await client.get("/v1/users/u1/recommendations", params={"k": 2, "catalog": "retail"})
    assert response.status_code == 200
    assert "retriever_unavailable" in response.json()["degradation_reasons"]
    assert [i["item"]["item_id"] for i in response.json()["items"]] == ["p1", "p2"]


async def test_similar_asks_the_cf_route_and_bought_together_passes_k_and_catalog(fakes) -> None:
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json={"item_id": "or-A", "items": []})
    async with _client(fakes) as client:
        await client.get("/v1/items/or-A/similar", params={"catalog": "retail", "k": 3})
        response = await client.get("/v1/items/or-A/bought-together", params={"catalog": "retail", "k": 4})
    assert response.status_code == 200
    assert [(r.url.path, dict(r.url.params)) for r in fakes.seen["retriever"]] == [
        ("/v1/cf/items/or-A/similar", {"k": "3", "catalog": "retail"}),
        ("/v1/cf/items/or-A/bought-together", {"k": "4", "catalog": "retail"})]


async def test_a_catalog_without_a_model_is_not_asked_again_for_a_while(fakes) -> None:
    fakes.handlers["retriever"] = _content_retriever(fakes, cf=httpx.Response(200, json=_cf_answer(
        fakes, [], cold=True, version=None)))
    fakes.handlers["session"] = lambda request: httpx.Response(404, json={"error": {"code": "not_found"}})
    async with _client(fakes) as client:
        for _ in range(3):
            assert (await client.get("/v1/users/u1/recommendations", params={"k": 2})).status_code == 200
    assert [r.url.path for r in fakes.seen["retriever"]].count("/v1/cf/recommend") == 1
