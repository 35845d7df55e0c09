"""Rate limits kept in the real Redis of the test session: two gateway instances count against one limit."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from pickwise_common.api_keys import digest
from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings

pytestmark = pytest.mark.integration


@asynccontextmanager
async def gateway(infra: Any, key_id: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    records = json.dumps([{"id": key_id, "sha256": digest(key), "scopes": ["read"], "catalogs": ["*"]}])
    settings = GatewaySettings(kafka_bootstrap=infra.config.kafka_bootstrap, redis_url=infra.config.redis_url,
                               api_keys=records, log_json=False, rate_limit_per_minute=3)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway",
                                     headers={"X-API-Key": key}) as client:
            yield client


async def test_two_gateway_instances_share_one_limit(infra: Any) -> None:
    key_id, key = f"shared-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    async with gateway(infra, key_id, key) as one, gateway(infra, key_id, key) as two:
        # /v1/nothing is past the limiter and answers 404 without calling any downstream
        statuses = [(await client.get("/v1/nothing")).status_code for client in (one, two, one, two)]
        last = await two.get("/v1/nothing")
    assert statuses == [404, 404, 404, 429]
    assert int(last.headers["Retry-After"]) >= 1
    redis = aioredis.Redis.from_url(infra.config.redis_url, decode_responses=True)
    try:
        stored = [k async for k in redis.scan_iter(match=f"*{key_id}*")]
    finally:
        await redis.aclose()
    assert stored, "the window lives in Redis, under the key id (never the key)"
    assert not [k for k in stored if key in k]
