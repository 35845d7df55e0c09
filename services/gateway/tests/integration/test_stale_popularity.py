"""Overload path against the real Redis: when the retriever is down or shedding and a fresh popularity
fetch fails too, the last fetched popularity list answers (degraded 200), not a 503."""

import json

import httpx
import pytest
import redis.asyncio as aioredis

from pickwise_common import redis as rd
from pickwise_common.breaker import RetryPolicy
from pickwise_common.http import ServiceClient
from pickwise_common.public_api import RecommendationRequest
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.variants import Variant

pytestmark = pytest.mark.integration

TEST_DB = 12


def shedding(target: str) -> ServiceClient:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": {"code": "overloaded", "message": f"{target} at capacity"}})

    return ServiceClient(caller="gateway-test", target=target, base_url=f"http://{target}.test",
                         retry=RetryPolicy(max_attempts=1), transport=httpx.MockTransport(handle))


async def test_last_popularity_list_answers_when_a_fresh_fetch_fails(infra) -> None:
    url = infra.config.redis_url.rsplit("/", 1)[0] + f"/{TEST_DB}"
    redis = aioredis.Redis.from_url(url, decode_responses=True)
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=0.2)
    await redis.flushdb()
    await redis.hset(rd.item_key("p1"), "json", json.dumps({
        "item_id": "p1", "title": "Phone p1", "brand": "samsung", "model": "p1", "price_inr": 9000.0,
        "price_band": "budget", "group_id": "p1", "rating": 4.0}))
    await redis.zadd(rd.POPULARITY_ALL_KEY, {"p1": 10})
    clients = {t: shedding(t) for t in ("retriever", "reranker", "generator", "session")}
    recommender = Recommender(GatewaySettings(popularity_cache_ttl_s=0), clients, redis)
    variant = Variant("A", "weighted", 0.3)
    try:
        first = await recommender.recommend(RecommendationRequest(query="phone", k=1, generate=False),
                                            request_id="r1", variant=variant)
        recommender.redis = dead  # Redis is gone now, and the fresh-list cache is off
        second = await recommender.recommend(RecommendationRequest(query="phone", k=1, generate=False),
                                             request_id="r2", variant=variant)
    finally:
        await redis.flushdb()
        await redis.aclose()
        await dead.aclose()
    assert [i.item_id for i in first.items] == ["p1"]
    assert [i.item_id for i in second.items] == ["p1"]
    assert second.degradation_reasons == ["retriever_unavailable"]
