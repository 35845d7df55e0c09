"""Rate-limit windows per key, per shopper and without a key; the in-process fallback when Redis is down."""

import pytest
from prometheus_client import REGISTRY
from redis import asyncio as aioredis

from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.rate_limit import RateLimits

pytestmark = pytest.mark.unit


def limits(**overrides) -> RateLimits:
    return RateLimits(GatewaySettings(**overrides))


async def test_key_limit_refuses_past_the_window_and_says_when_to_retry() -> None:
    rl = limits(rate_limit_per_minute=2)
    assert [await rl.check(rl.key_limits("web")) for _ in range(2)] == [0.0, 0.0]
    wait_s = await rl.check(rl.key_limits("web"))
    assert 0 < wait_s <= 60
    assert RateLimits.retry_after_s(wait_s) >= 1


async def test_keys_are_counted_apart() -> None:
    rl = limits(rate_limit_per_minute=1)
    assert await rl.check(rl.key_limits("web")) == 0
    assert await rl.check(rl.key_limits("partner")) == 0
    assert await rl.check(rl.key_limits("web")) > 0


async def test_shopper_limit_is_separate_from_the_key_limit() -> None:
    rl = limits(rate_limit_per_minute=100, rate_limit_per_client_per_minute=1)
    assert await rl.check(rl.key_limits("web") + rl.client_limits("user:u1")) == 0
    assert await rl.check(rl.key_limits("web") + rl.client_limits("user:u1")) > 0
    assert await rl.check(rl.key_limits("web") + rl.client_limits("user:u2")) == 0


async def test_burst_limits_a_key_within_one_second() -> None:
    rl = limits(rate_limit_per_minute=1000, rate_limit_burst=1)
    assert await rl.check(rl.key_limits("web")) == 0
    assert 0 < await rl.check(rl.key_limits("web")) <= 1


async def test_redis_down_falls_back_to_in_process_limits_and_says_so() -> None:
    rl = limits(rate_limit_per_minute=1)
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", decode_responses=True, socket_connect_timeout=0.2)
    rl.use_redis(dead.connection_pool)
    before = REGISTRY.get_sample_value("pickwise_gateway_rate_limit_fallbacks_total") or 0.0
    assert await rl.check(rl.key_limits("web")) == 0, "a storage error never fails the request"
    assert await rl.check(rl.key_limits("web")) > 0, "the in-process window still limits"
    assert REGISTRY.get_sample_value("pickwise_gateway_rate_limit_backend", {"backend": "memory"}) == 1
    assert (REGISTRY.get_sample_value("pickwise_gateway_rate_limit_fallbacks_total") or 0.0) > before
    await dead.aclose()
