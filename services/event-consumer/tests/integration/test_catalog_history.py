"""The CF fold-in input over the real broker, Redis and Postgres: purchases, clicks and dismisses land in the
event's catalog's keys (history hash, dismissed set, popularity) and in the events table with their catalog,
quantity and invoice; the default catalog's keys stay untouched by a retail event."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest

from pickwise_common import redis as keys
from pickwise_common.schemas import InteractionEvent

pytestmark = pytest.mark.integration


def _event(kind: str, user: str, item: str, catalog: str, quantity: int | None = None,
           invoice: str | None = None) -> InteractionEvent:
    return InteractionEvent(event_id=uuid.uuid4(), type=kind, ts=datetime.now(UTC), user_id=user, item_id=item,
                            catalog=catalog, quantity=quantity, invoice=invoice)


async def test_retail_events_fill_the_retail_history_dismissed_and_popularity_keys(consumer_env, eventually) -> None:
    env = consumer_env
    user, bought, clicked, hidden = f"{env.prefix}-u", "or-TEST1", "or-TEST2", "or-TEST3"
    events = [_event("purchase", user, bought, "retail", quantity=3, invoice="536365"),
              _event("purchase", user, bought, "retail", quantity=1, invoice="536366"),
              _event("click", user, clicked, "retail"),
              _event("dismiss", user, hidden, "retail")]
    async with env.running():
        for event in events:
            await env.producer.send(env.topics.interactions, event.model_dump(mode="json"), key=user)

        async def all_applied() -> bool:
            return await env.redis.sismember(keys.user_dismissed_key(user, "retail"), hidden) == 1 and \
                await env.redis.hget(keys.user_history_key(user, "retail"), clicked) is not None and \
                float(await env.redis.hget(keys.user_history_key(user, "retail"), bought) or 0) > 3
        await eventually(all_applied, "the retail events reached the user's retail keys")

    history = {k: float(v) for k, v in (await env.redis.hgetall(keys.user_history_key(user, "retail"))).items()}
    assert history == pytest.approx({bought: 2 + math.log1p(3) + math.log1p(1), clicked: 0.5}, rel=1e-5)
    assert await env.redis.smembers(keys.user_dismissed_key(user, "retail")) == {hidden}
    # the history and dismissed keys share the user's hash slot with the other per-user keys
    assert keys.user_history_key(user, "retail").startswith("retail:u:{" + user + "}")
    # nothing of it in the default catalog's keys
    assert not await env.redis.exists(keys.user_history_key(user), keys.user_dismissed_key(user),
                                      keys.user_clicks_key(user))
    assert await env.redis.zscore(keys.popularity_all_key("retail"), bought) == pytest.approx(10.0)
    assert await env.redis.zscore(keys.POPULARITY_ALL_KEY, bought) is None
    # a dismiss is no vote for the item
    assert await env.redis.zscore(keys.popularity_all_key("retail"), hidden) is None
    assert await env.redis.lrange(keys.user_clicks_key(user, "retail"), 0, -1) == [clicked, bought]

    rows = await env.pool.fetch("SELECT type, catalog, quantity, invoice FROM events WHERE user_id = $1 "
                                "ORDER BY ts", user)
    assert [tuple(r) for r in rows] == [("purchase", "retail", 3, "536365"), ("purchase", "retail", 1, "536366"),
                                        ("click", "retail", None, None), ("dismiss", "retail", None, None)]


async def test_an_event_of_an_unknown_catalog_is_dead_lettered(consumer_env, topic_records) -> None:
    env = consumer_env
    user = f"{env.prefix}-u"
    body = _event("click", user, "or-TEST1", "retail").model_dump(mode="json") | {"catalog": "nosuch"}
    async with env.running():
        await env.producer.send(env.topics.interactions, body, key=user)
        dead = await topic_records(env.kafka, env.topics.ladder.dlq, 1)
    assert len(dead) == 1
    assert await env.pool.fetchval("SELECT count(*) FROM events WHERE user_id = $1", user) == 0
