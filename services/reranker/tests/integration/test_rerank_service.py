"""The reranker service against the real embedded Redis: behaviour boost from the user's features,
degradation without Redis, model reporting in /readyz and responses, admin reload, input errors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from pickwise_common import redis as rkeys
from pickwise_common.launcher.processes import free_port
from pickwise_reranker.app import create_app
from pickwise_reranker.config import RerankerSettings

pytestmark = pytest.mark.integration

ADMIN = "reranker-admin-key"


@pytest.fixture
def redis_url(infra) -> str:
    return infra.config.redis_url


@pytest.fixture
def rds(redis_url) -> redis.Redis:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def user_id() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"


def settings(redis_url: str, model_dir, **overrides: Any) -> RerankerSettings:
    values: dict[str, Any] = {"redis_url": redis_url, "ranker_model_dir": model_dir, "reranker_model": "none",
                              "mlflow_tracking_uri": "none",
                              "admin_key": ADMIN, "log_json": False}
    return RerankerSettings(**(values | overrides))


def payload(cands, **extra: Any) -> dict[str, Any]:
    return {"query": "samsung phone", "candidates": [c.model_dump(mode="json") for c in cands], **extra}


def ids(response) -> list[str]:
    return [r["item"]["item_id"] for r in response.json()["items"]]


def test_a_click_lifts_the_clicked_item_for_that_user_only(redis_url, rds, tmp_path, make_candidate, user_id,
                                                          no_blocking_io):
    tag = uuid.uuid4().hex[:6]
    cands = [make_candidate(f"{tag}-a", fused=0.9), make_candidate(f"{tag}-b", fused=0.8),
             make_candidate(f"{tag}-c", fused=0.7)]
    rds.lpush(rkeys.user_clicks_key(user_id), f"{tag}-c")
    with TestClient(create_app(settings(redis_url, tmp_path))) as client:
        clicked = client.post("/v1/rerank", json=payload(cands, user_id=user_id, explain=True, k=3))
        other = client.post("/v1/rerank", json=payload(cands, user_id="someone-else", k=3))
    assert clicked.status_code == 200
    assert ids(clicked)[0] == f"{tag}-c" and ids(other)[0] == f"{tag}-a"
    body = clicked.json()
    assert body["features_available"] is True
    top = body["items"][0]
    assert top["boost"]["clicked"] is True and top["boost"]["multiplier"] == pytest.approx(2.0)
    assert top["score"] == pytest.approx(top["base_score"] * 2.0, rel=1e-4)
    assert other.json()["items"][0]["boost"] is None


def test_a_click_counts_only_in_its_catalog(redis_url, rds, tmp_path, make_candidate, user_id):
    tag = uuid.uuid4().hex[:6]
    cands = [make_candidate(f"or-{tag}-a", fused=0.9), make_candidate(f"or-{tag}-b", fused=0.8)]
    rds.lpush(rkeys.user_clicks_key(user_id, "retail"), f"or-{tag}-b")
    with TestClient(create_app(settings(redis_url, tmp_path))) as client:
        retail = client.post("/v1/rerank", json=payload(cands, user_id=user_id, catalog="retail", k=2))
        flipkart = client.post("/v1/rerank", json=payload(cands, user_id=user_id, k=2))
    assert ids(retail) == [f"or-{tag}-b", f"or-{tag}-a"]
    assert ids(flipkart) == [f"or-{tag}-a", f"or-{tag}-b"]


def test_a_click_on_another_colour_of_the_model_counts(redis_url, rds, tmp_path, make_candidate, user_id,
                                                      no_blocking_io):
    tag = uuid.uuid4().hex[:6]
    rds.hset(rkeys.item_key(f"{tag}-red"), mapping={"group_id": f"{tag}-model", "brand": "Samsung"})
    rds.lpush(rkeys.user_clicks_key(user_id), f"{tag}-red")
    cands = [make_candidate(f"{tag}-x", fused=0.9), make_candidate(f"{tag}-blue", fused=0.7,
                                                                   group_id=f"{tag}-model")]
    with TestClient(create_app(settings(redis_url, tmp_path))) as client:
        response = client.post("/v1/rerank", json=payload(cands, user_id=user_id, explain=True))
    assert ids(response) == [f"{tag}-blue", f"{tag}-x"]
    assert response.json()["items"][0]["boost"]["clicked"] is True


def test_brand_affinity_and_popularity_show_in_the_boost(redis_url, rds, tmp_path, make_candidate, user_id):
    tag = uuid.uuid4().hex[:6]
    now = time.time()
    rds.hset(rkeys.user_affinity_key(user_id), mapping={"brand:apple": 3.0, "brand:apple:t": now,
                                                        "category:mobile": 3.0, "category:mobile:t": now})
    rds.zadd(rkeys.POPULARITY_ALL_KEY, {f"{tag}-pop": 1e9})
    cands = [make_candidate(f"{tag}-s", brand="Samsung", fused=0.9),
             make_candidate(f"{tag}-apple", brand="Apple", fused=0.9),
             make_candidate(f"{tag}-pop", brand="Samsung", fused=0.9)]
    try:
        with TestClient(create_app(settings(redis_url, tmp_path))) as client:
            items = client.post("/v1/rerank", json=payload(cands, user_id=user_id, explain=True)).json()["items"]
    finally:
        # pop:all is shared by the whole test session: leave it as it was
        rds.zrem(rkeys.POPULARITY_ALL_KEY, f"{tag}-pop")
    by_id = {i["item"]["item_id"]: i["boost"] for i in items}
    assert by_id[f"{tag}-apple"]["affinity"] == pytest.approx(1.0)
    assert by_id[f"{tag}-s"]["affinity"] == pytest.approx(0.5)
    assert by_id[f"{tag}-pop"]["popularity"] == pytest.approx(1.0)
    assert by_id[f"{tag}-pop"]["multiplier"] == pytest.approx(1.0 + 0.2 * 0.5 + 0.3)


def test_redis_down_means_no_boost_and_features_unavailable_not_an_error(tmp_path, make_candidate):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    cands = [make_candidate("a", fused=0.2), make_candidate("b", fused=0.9)]
    with TestClient(create_app(settings(dead, tmp_path))) as client:
        response = client.post("/v1/rerank", json=payload(cands, user_id="u1", explain=True))
        ready = client.get("/readyz")
    assert response.status_code == 200
    # no ranker, no boost: the retriever's order stands (decision 1003c), whatever the fused scores say
    assert response.json()["features_available"] is False and ids(response) == ["a", "b"]
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"


def test_readyz_and_responses_say_when_the_cross_encoder_is_absent(redis_url, tmp_path, make_candidate):
    with TestClient(create_app(settings(redis_url, tmp_path, reranker_model="nobody/absent-model"))) as client:
        models = client.get("/readyz").json()["checks"]["models"]
        response = client.post("/v1/rerank", json=payload([make_candidate("a")]))
    assert models["cross_encoder"] == "absent" and models["ranker"] == "absent"
    assert response.json()["cross_encoder"] is None and response.json()["ranker"] is None


def test_a_local_cross_encoder_is_loaded_and_reported(redis_url, tmp_path, tiny_cross_encoder, make_candidate,
                                                      no_blocking_io):
    config = settings(redis_url, tmp_path, reranker_model=str(tiny_cross_encoder))
    with TestClient(create_app(config)) as client:
        models = client.get("/readyz").json()["checks"]["models"]
        body = client.post("/v1/rerank", json=payload([make_candidate(f"c{i}") for i in range(12)], k=12)).json()
    assert models["cross_encoder"] == str(tiny_cross_encoder)
    assert body["cross_encoder"] == str(tiny_cross_encoder)
    assert all(0 < i["cross_encoder_score"] < 1 for i in body["items"]) and len(body["items"]) == 12


def test_admin_reload_picks_up_a_newer_ranker(redis_url, tmp_path, ranker_writer, make_candidate):
    ranker_writer(tmp_path, "20260101T000000")
    with TestClient(create_app(settings(redis_url, tmp_path))) as client:
        before = client.post("/v1/rerank", json=payload([make_candidate("a")])).json()["ranker"]
        ranker_writer(tmp_path, "20260505T000000")
        denied = client.post("/v1/admin/reload", headers={"X-Admin-Key": "wrong"})
        reloaded = client.post("/v1/admin/reload", headers={"X-Admin-Key": ADMIN})
        after = client.post("/v1/rerank", json=payload([make_candidate("a")])).json()["ranker"]
    assert before == "lightgbm-lambdarank:20260101T000000"
    assert denied.status_code == 401
    assert reloaded.status_code == 200 and reloaded.json()["ranker"] == "lightgbm-lambdarank:20260505T000000"
    assert after == "lightgbm-lambdarank:20260505T000000"


def test_admin_reload_is_off_without_an_admin_key(redis_url, tmp_path):
    with TestClient(create_app(settings(redis_url, tmp_path, admin_key=None))) as client:
        assert client.post("/v1/admin/reload", headers={"X-Admin-Key": "x"}).status_code == 403


@pytest.mark.parametrize(("body", "field"), [
    ({"query": "x"}, "body.candidates"),
    ({"query": "x", "candidates": [], "k": 0}, "body.k"),
    ({"query": "x", "candidates": [{"fused_score": 1}]}, "body.candidates.0.item"),
    ({"query": "x", "candidates": [], "user_id": "bad id!"}, "body.user_id"),
])
def test_bad_input_is_422_naming_the_field(redis_url, tmp_path, body, field):
    with TestClient(create_app(settings(redis_url, tmp_path))) as client:
        response = client.post("/v1/rerank", json=body)
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


def test_a_duplicate_candidate_is_422_naming_it(redis_url, tmp_path, make_candidate):
    cands = [make_candidate("a"), make_candidate("b"), make_candidate("a")]
    with TestClient(create_app(settings(redis_url, tmp_path))) as client:
        response = client.post("/v1/rerank", json=payload(cands))
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "body.candidates.2.item.item_id"


def test_unknown_catalog_is_404_naming_it(redis_url, tmp_path):
    with TestClient(create_app(settings(redis_url, tmp_path))) as client:
        response = client.post("/v1/rerank", json={"query": "x", "candidates": [], "catalog": "books"})
    assert response.status_code == 404
    assert response.json()["error"]["fields"][0]["field"] == "catalog"
