"""The CF routes over a tiny model and a scripted catalog (no stores): feed answer shape and degradation without
Redis, 404s for unknown items and catalogs, similar's content fallback, bought-together, and the admin reload
that serves a newly saved version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pickwise_common import cf
from pickwise_common.app import service_app
from pickwise_common.public_api import SimilarResponse
from pickwise_common.schemas import Candidate, Item
from pickwise_retriever import api, cf_api, deps
from pickwise_retriever.cf_serving import CfModels
from pickwise_retriever.config import RetrieverSettings

from .test_cf_serving import ITEMS, tiny_model

pytestmark = pytest.mark.unit
ADMIN = "admin-secret"


class FakeItems:
    def __init__(self, ids: list[str]) -> None:
        self.items = {i: Item(item_id=i, catalog="retail", title=f"item {i}", price=1.5, currency="GBP") for i in ids}

    def item(self, catalog: str, item_id: str) -> Item | None:
        return self.items.get(item_id) if catalog == "retail" else None

    def known(self, catalog: str) -> Callable[[str], bool]:
        return lambda item_id: self.item(catalog, item_id) is not None


def _client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: list[str] = ITEMS) -> tuple[httpx.AsyncClient,
                                                                                                CfModels]:
    settings = RetrieverSettings(admin_key=ADMIN, cf_models_dir=tmp_path, log_json=False)
    app = service_app("retriever", settings)
    app.include_router(cf_api.router)
    models = CfModels(tmp_path, ["retail", "flipkart"])
    items = FakeItems(ids)
    app.dependency_overrides[deps.get_cf_models] = lambda: models
    app.dependency_overrides[deps.get_redis] = lambda: None
    app.dependency_overrides[deps.get_catalog_items] = lambda: items
    app.dependency_overrides[deps.get_settings] = lambda: settings
    app.dependency_overrides[deps.get_retriever] = lambda: object()
    app.dependency_overrides[deps.get_popularity] = lambda: object()

    async def content_similar(item_id: str, retriever: Any, popularity: Any, k: int = 10,
                              catalog: str | None = None) -> SimilarResponse:
        return SimilarResponse(item_id=item_id, candidates=[Candidate(item=items.items["or-F"], fused_score=0.5)])
    monkeypatch.setattr(api, "similar", content_similar)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://retriever"), models


async def test_without_redis_the_feed_is_cold_start_popularity_marked_degraded(tmp_path, monkeypatch) -> None:
    cf.save(tiny_model(), tmp_path)
    client, models = _client(tmp_path, monkeypatch)
    models.refresh()
    async with client:
        response = await client.post("/v1/cf/recommend", json={"catalog": "retail", "user_id": "u1", "k": 2,
                                                                "explain": True})
    body = response.json()
    assert response.status_code == 200
    assert body["model_version"] == "cf-v20261201T000000Z" and body["cold_start"] is True
    assert body["degradation_reasons"] == ["features_unavailable"]
    assert [(i["item"]["item_id"], i["reason"], i["sources"]) for i in body["items"]] == [
        ("or-F", "popularity", {"popularity": 1.0}), ("or-E", "popularity", {"popularity": 0.8})]


async def test_a_catalog_without_a_model_answers_no_version_and_no_items(tmp_path, monkeypatch) -> None:
    client, _ = _client(tmp_path, monkeypatch)
    async with client:
        body = (await client.post("/v1/cf/recommend", json={"catalog": "retail", "user_id": "u1"})).json()
    assert body["model_version"] is None and body["items"] == []


async def test_unknown_catalog_and_bad_k_are_refused(tmp_path, monkeypatch) -> None:
    client, _ = _client(tmp_path, monkeypatch)
    async with client:
        unknown = await client.post("/v1/cf/recommend", json={"catalog": "books", "user_id": "u1"})
        bad_k = await client.post("/v1/cf/recommend", json={"catalog": "retail", "user_id": "u1", "k": 0})
    assert unknown.status_code == 404 and unknown.json()["error"]["fields"][0]["field"] == "catalog"
    assert bad_k.status_code == 422 and bad_k.json()["error"]["fields"][0]["field"] == "body.k"


async def test_similar_is_cf_for_an_item_with_neighbours_and_content_otherwise(tmp_path, monkeypatch) -> None:
    cf.save(tiny_model(), tmp_path)
    client, models = _client(tmp_path, monkeypatch)
    models.refresh()
    async with client:
        with_history = (await client.get("/v1/cf/items/or-A/similar", params={"catalog": "retail", "k": 5})).json()
        without = (await client.get("/v1/cf/items/or-B/similar", params={"catalog": "retail"})).json()
        missing = await client.get("/v1/cf/items/or-NOPE/similar", params={"catalog": "retail"})
    assert with_history["source"] == "cf"
    assert [c["item"]["item_id"] for c in with_history["candidates"]] == ["or-B", "or-C"]
    assert without["source"] == "content" and without["candidates"][0]["item"]["item_id"] == "or-F"
    assert missing.status_code == 404


async def test_bought_together_lists_pairs_with_lift_and_support(tmp_path, monkeypatch) -> None:
    cf.save(tiny_model(), tmp_path)
    client, models = _client(tmp_path, monkeypatch)
    models.refresh()
    async with client:
        body = (await client.get("/v1/cf/items/or-A/bought-together", params={"catalog": "retail"})).json()
        none = (await client.get("/v1/cf/items/or-D/bought-together", params={"catalog": "retail"})).json()
    assert [(i["item"]["item_id"], i["lift"], i["support"]) for i in body["items"]] == [("or-C", 4.0, 12)]
    assert none["items"] == [] and none["model_version"] == "cf-v20261201T000000Z"


async def test_admin_reload_needs_the_key_and_serves_the_newest_version(tmp_path, monkeypatch) -> None:
    client, models = _client(tmp_path, monkeypatch)
    cf.save(tiny_model("cf-v20261201T000500Z"), tmp_path)
    async with client:
        refused = await client.post("/v1/admin/reload")
        reloaded = await client.post("/v1/admin/reload", headers={"X-Admin-Key": ADMIN})
    assert refused.status_code == 401
    assert reloaded.status_code == 200
    assert reloaded.json()["versions"] == {"retail": "cf-v20261201T000500Z", "flipkart": None}
    assert models.version("retail") == "cf-v20261201T000500Z"
