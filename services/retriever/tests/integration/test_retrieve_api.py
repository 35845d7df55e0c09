"""The retriever over HTTP against the session's stack (catalog ingested into the real Postgres, Milvus
Lite and Redis by the launcher)."""

import httpx
import pytest
import redis

from pickwise_common.launcher.processes import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(stack) -> str:
    return stack.url("retriever")


def retrieve(url: str, **body) -> httpx.Response:
    return httpx.post(url + "/v1/retrieve", json=body, timeout=30)


def test_constraints_hold_for_every_candidate(url: str) -> None:
    body = retrieve(url, query="Samsung under ₹15,000 with 128GB", k=20).json()
    assert body["parsed"]["brands"] == ["Samsung"]
    assert body["parsed"]["price_max_inr"] == 15000
    assert body["candidates"]
    for c in body["candidates"]:
        assert c["item"]["brand"] == "Samsung"
        assert c["item"]["price_inr"] <= 15000
        assert c["item"]["storage_gb"] >= 128
        assert all(c["satisfies"].values())


def test_one_candidate_per_variant_group(url: str) -> None:
    candidates = retrieve(url, query="oppo a53", k=30).json()["candidates"]
    groups = [c["item"]["group_id"] for c in candidates]
    assert len(groups) == len(set(groups))
    assert any(c["variant_ids"] for c in candidates)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_model_query_finds_the_model_in_every_mode(url: str, mode: str) -> None:
    candidates = retrieve(url, query="Nokia 2.4", mode=mode, k=5).json()["candidates"]
    assert candidates[0]["item"]["model"] == "2.4"


def test_rrf_fusion(url: str) -> None:
    body = retrieve(url, query="Asus ROG Phone 3", fusion="rrf", k=5).json()
    assert "ROG Phone 3" in body["candidates"][0]["item"]["model"]


def test_cheapest_sorts_by_price(url: str) -> None:
    prices = [c["item"]["price_inr"] for c in retrieve(url, query="cheapest Gionee phones", k=10).json()["candidates"]]
    assert prices == sorted(prices)


def test_explicit_filters_merge_with_parsed_constraints(url: str) -> None:
    # k within the strict matches (20 models), so nothing is relaxed (decision 0732)
    body = retrieve(url, query="phone under 20k", filters={"brands": ["xiaomi"], "ram_gb_min": 6}, k=10).json()
    assert body["parsed"]["brands"] == ["Xiaomi"] and body["parsed"]["ram_gb_min"] == 6
    assert body["parsed"]["relaxed"] == []
    assert all(c["item"]["brand"] == "Xiaomi" and c["item"]["ram_gb"] >= 6 for c in body["candidates"])


def test_refinement_keeps_previous_constraints(url: str) -> None:
    body = retrieve(url, query="what about Samsung", previous={"brands": ["Xiaomi"], "price_max_inr": 15000}).json()
    assert body["refined"] is True
    assert body["parsed"]["brands"] == ["Samsung"] and body["parsed"]["price_max_inr"] == 15000
    assert all(c["item"]["price_inr"] <= 15000 for c in body["candidates"])


def test_impossible_filter_is_an_empty_answer_with_the_parsed_constraints(url: str) -> None:
    response = retrieve(url, query="phones above 50k under 20k")
    assert response.status_code == 200
    assert response.json()["candidates"] == []
    assert response.json()["parsed"]["price_min_inr"] == 50000


@pytest.mark.parametrize("query", ["", "   ", "x" * 2000])
def test_bad_queries_are_422_naming_the_field(url: str, query: str) -> None:
    response = retrieve(url, query=query)
    assert response.status_code == 422
    assert any("query" in f["field"] for f in response.json()["error"]["fields"])


def test_item_lookup_and_unknown_id(url: str) -> None:
    item = httpx.get(url + "/v1/items/fm-00001", timeout=10).json()
    assert (item["brand"], item["model"]) == ("OPPO", "A53")
    missing = httpx.get(url + "/v1/items/fm-99999", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_similar_excludes_the_items_own_variants(url: str) -> None:
    body = httpx.get(url + "/v1/items/fm-00001/similar", params={"k": 8}, timeout=10).json()
    own_group = httpx.get(url + "/v1/items/fm-00001", timeout=10).json()["group_id"]
    assert len(body["candidates"]) == 8
    assert all(c["item"]["group_id"] != own_group for c in body["candidates"])
    assert httpx.get(url + "/v1/items/nope/similar", timeout=10).status_code == 404


def test_popular_reads_redis_popularity(stack, url: str) -> None:
    client = redis.Redis.from_url(stack.infra.config.redis_url, decode_responses=True)
    client.zadd("pop:all", {"fm-00042": 50.0, "fm-00100": 20.0})
    try:
        body = httpx.get(url + "/v1/popular", params={"k": 2}, timeout=10).json()
        assert body["source"] in ("24h", "7d", "all")
        if body["source"] == "all":
            assert body["candidates"][0]["item"]["item_id"] == "fm-00042"
        candidates = retrieve(url, query="phone", k=50).json()["candidates"]
        assert all(0.0 <= c["popularity"] <= 1.0 for c in candidates)
    finally:
        client.zrem("pop:all", "fm-00042", "fm-00100")


def test_popular_skips_a_tier_holding_only_unknown_items(stack, url: str) -> None:
    from datetime import UTC, datetime

    from pickwise_common.redis import popularity_hour_key

    client = redis.Redis.from_url(stack.infra.config.redis_url, decode_responses=True)
    hour_key = popularity_hour_key(datetime.now(UTC))
    saved_hour = client.zrange(hour_key, 0, -1, withscores=True)
    client.delete(hour_key)
    client.zadd(hour_key, {"not-in-catalog-1": 99.0})
    client.zadd("pop:all", {"fm-00042": 1e6})
    try:
        body = httpx.get(url + "/v1/popular", params={"k": 1}, timeout=10).json()
        assert body["source"] in ("7d", "all")
        assert all(c["item"]["item_id"] != "not-in-catalog-1" for c in body["candidates"])
    finally:
        client.zrem("pop:all", "fm-00042")
        client.delete(hour_key)
        if saved_hour:
            client.zadd(hour_key, dict(saved_hour))


def test_answers_while_redis_is_down(stack) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    proc, url = stack.start_extra("retriever", {"PICKWISE_REDIS_URL": dead})
    try:
        ready = httpx.get(url + "/readyz", timeout=10).json()
        assert ready["status"] == "degraded"
        assert ready["checks"]["redis"]["ok"] is False
        body = retrieve(url, query="vivo phone under 12k", k=5).json()
        assert body["candidates"] and all(c["popularity"] == 0.0 for c in body["candidates"])
        popular = httpx.get(url + "/v1/popular", params={"k": 5}, timeout=10).json()
        assert popular["source"] == "rating"
        ratings = [c["item"]["rating"] or 0 for c in popular["candidates"]]
        assert ratings == sorted(ratings, reverse=True)
    finally:
        proc.stop()
