"""Impressions over the real broker, Redis and Postgres: stored once per event_id with every column, counted
per user and item in the shown-items hash once per impression, cleared by an engagement, dead-lettered when
malformed; the next good impression is still stored."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from pickwise_common import redis as keys
from pickwise_common.kafka import headers_dict
from pickwise_common.schemas import ImpressionEvent, ImpressionItem, InteractionEvent

pytestmark = pytest.mark.integration


def _impression(env, user: str | None, item_ids: list[str], **fields) -> ImpressionEvent:
    items = [ImpressionItem(item_id=item, position=n, score=round(1.0 - n / 10, 3))
             for n, item in enumerate(item_ids)]
    return ImpressionEvent(request_id=f"{env.prefix}-{uuid.uuid4().hex[:8]}", endpoint="search", user_id=user,
                           session_id=f"{env.prefix}-s", items=items, **fields)


async def _publish(env, event: ImpressionEvent) -> None:
    await env.producer.send(env.topics.impressions, event.model_dump(mode="json"),
                            key=event.user_id or event.session_id or event.request_id)


async def _stored(env) -> int:
    return await env.pool.fetchval("SELECT count(*) FROM impressions WHERE request_id LIKE $1", f"{env.prefix}-%")


def _stored_metric(outcome: str) -> float:
    return REGISTRY.get_sample_value("pickwise_impressions_stored_total",
                                     {"endpoint": "search", "outcome": outcome}) or 0.0


async def test_redelivered_impression_is_stored_and_counted_once(consumer_env, eventually) -> None:
    env = consumer_env
    user = f"{env.prefix}-user"
    first = _impression(env, user, ["a", "b", "c"], query="samsung under 20k", experiment="ab", variant="B",
                        model_versions={"ranker": "pickwise-ranker/3@champion"}, explore={"pair": 1, "swapped": 1},
                        constraints={"brands": ["samsung"], "price_max": 20000}, latency_ms=41.5,
                        degraded=["generator_unavailable"])
    second = _impression(env, user, ["b", "a"])
    anonymous = _impression(env, None, ["a"])
    stored_before, duplicates_before = _stored_metric("stored"), _stored_metric("duplicate")

    async with env.running():
        for event in (first, first, second, first, anonymous):
            await _publish(env, event)

        async def all_handled() -> bool:
            return _stored_metric("stored") + _stored_metric("duplicate") - stored_before - duplicates_before >= 5
        await eventually(all_handled, "five impression messages handled")

    assert await _stored(env) == 3
    assert (_stored_metric("stored") - stored_before, _stored_metric("duplicate") - duplicates_before) == (3, 2)
    assert await env.redis.hgetall(keys.user_shown_key(user)) == {"a": "2", "b": "2", "c": "1"}
    assert await env.redis.ttl(keys.user_shown_key(user)) > 0
    row = await env.pool.fetchrow("SELECT * FROM impressions WHERE event_id = $1", first.event_id)
    assert (row["request_id"], row["endpoint"], row["catalog"], row["user_id"], row["query"], row["variant"],
            row["experiment"], row["latency_ms"], row["status"]) == (
        first.request_id, "search", "flipkart", user, "samsung under 20k", "B", "ab", 41.5, 200)
    assert json.loads(row["items"]) == [{"item_id": "a", "position": 0, "score": 1.0},
                                        {"item_id": "b", "position": 1, "score": 0.9},
                                        {"item_id": "c", "position": 2, "score": 0.8}]
    assert json.loads(row["model_versions"]) == {"ranker": "pickwise-ranker/3@champion"}
    assert json.loads(row["explore"]) == {"pair": 1, "swapped": 1}
    assert json.loads(row["degraded"]) == ["generator_unavailable"]
    assert json.loads(row["payload"]) == {"constraints": {"brands": ["samsung"], "price_max": 20000}}
    anonymous_row = await env.pool.fetchrow("SELECT user_id, session_id FROM impressions WHERE event_id = $1",
                                            anonymous.event_id)
    assert (anonymous_row["user_id"], anonymous_row["session_id"]) == (None, f"{env.prefix}-s")


async def test_engaging_with_an_item_clears_its_shown_count(consumer_env, eventually) -> None:
    env = consumer_env
    user = f"{env.prefix}-engaged"
    shown = _impression(env, user, ["x", "y"], catalog="retail")
    click = InteractionEvent(event_id=uuid.uuid4(), type="add_to_cart", ts=datetime.now(UTC), user_id=user, item_id="x",
                             catalog="retail")

    async with env.running():
        await _publish(env, shown)

        async def counted() -> bool:
            return await env.redis.hlen(keys.user_shown_key(user, "retail")) == 2
        await eventually(counted, "the impression counted in the retail shown hash")
        await env.producer.send(env.topics.interactions, click.model_dump(mode="json"), key=user)

        async def cleared() -> bool:
            return not await env.redis.hexists(keys.user_shown_key(user, "retail"), "x")
        await eventually(cleared, "the add-to-cart cleared the item's shown count")

    assert await env.redis.hgetall(keys.user_shown_key(user, "retail")) == {"y": "1"}
    assert await env.redis.exists(keys.user_shown_key(user)) == 0  # the default catalog's hash is untouched


async def test_malformed_impression_is_dead_lettered_and_the_next_is_stored(
        consumer_env, eventually, topic_records) -> None:
    env = consumer_env
    bad = _impression(env, "u-bad", ["a"]).model_dump(mode="json") | {"items": [{"item_id": "a", "position": -1}]}
    good = _impression(env, "u-good", ["a"])

    async with env.running():
        await env.producer.send(env.topics.impressions, bad, key="u-bad")
        await _publish(env, good)

        async def good_stored() -> bool:
            return await env.pool.fetchval("SELECT count(*) FROM impressions WHERE event_id = $1",
                                           good.event_id) == 1
        await eventually(good_stored, "the impression after the malformed one was stored")

    dead = await topic_records(env.kafka, env.topics.ladder.dlq, 1)
    assert json.loads(dead[0].value)["request_id"] == bad["request_id"]
    headers = headers_dict(dead[0].headers)
    assert headers["pickwise-dlq-reason"].startswith("invalid_event: items.0.position")
    assert headers["pickwise-origin-topic"] == env.topics.impressions
    assert await _stored(env) == 1
