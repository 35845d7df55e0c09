"""The feature update on a real Redis Cluster (3 masters started by the test, redis-py's RedisCluster
client): the per-user script touches one hash slot, popularity is updated outside it and stays bounded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, ResponseError

from pickwise_common import redis as keys
from pickwise_common.features import affinity_field
from pickwise_common.schemas import ImpressionEvent, ImpressionItem, InteractionEvent
from pickwise_event_consumer.feature_update import APPLY_EVENT_LUA, FeatureParams, FeatureWriter, script_call

pytestmark = pytest.mark.integration
PARAMS = FeatureParams(half_life_h=24, clicks_cap=50, seen_ttl_s=600, pop_hour_ttl_s=600, user_ttl_s=600,
                       popularity_max_items=3)


@pytest.fixture
async def cluster(redis_cluster) -> AsyncIterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=redis_cluster[0].port, decode_responses=True)
    await client.initialize()
    try:
        yield client
    finally:
        await client.aclose()


def _event(user: str, item: str, kind: str = "click") -> InteractionEvent:
    return InteractionEvent(event_id=uuid.uuid4(), type=kind, ts=datetime.now(UTC), user_id=user, item_id=item)


async def test_feature_update_runs_on_a_redis_cluster_and_applies_once(cluster: RedisCluster) -> None:
    await cluster.hset(keys.item_key("i-1"), mapping={"brand": "Samsung", "category": "mobile"})
    writer = FeatureWriter(cluster, PARAMS)
    users = [f"user-{n}" for n in range(12)]  # spread over the three masters' slots
    events = [_event(user, "i-1") for user in users]

    first = await writer.apply(events)
    again = await writer.apply(events)

    assert first == [True] * 12 and again == [False] * 12
    for user in users:
        assert await cluster.lrange(keys.user_clicks_key(user), 0, -1) == ["i-1"]
        assert float(await cluster.hget(keys.user_affinity_key(user), affinity_field("brand", "samsung"))) == 1.0
    assert await cluster.zscore(keys.POPULARITY_ALL_KEY, "i-1") == pytest.approx(12.0)
    assert await cluster.zscore(keys.popularity_hour_key(events[0].ts), "i-1") == pytest.approx(12.0)


async def test_shown_counters_run_on_a_redis_cluster_count_once_and_clear_on_a_click(cluster: RedisCluster) -> None:
    writer = FeatureWriter(cluster, PARAMS)
    users = [f"viewer-{n}" for n in range(12)]
    shown = [ImpressionEvent(request_id=f"r-{user}", endpoint="feed", user_id=user,
                             items=[ImpressionItem(item_id=i, position=n) for n, i in enumerate(["i-1", "i-2"])])
             for user in users]
    anonymous = ImpressionEvent(request_id="r-anon", endpoint="search", items=[ImpressionItem(item_id="i-1",
                                                                                              position=0)])

    first = await writer.apply_impressions([*shown, anonymous])
    again = await writer.apply_impressions(shown)
    await writer.apply([_event(users[0], "i-1")])

    assert first == [True] * 12 + [None] and again == [False] * 12
    assert await cluster.hgetall(keys.user_shown_key(users[0])) == {"i-2": "1"}
    for user in users[1:]:
        assert await cluster.hgetall(keys.user_shown_key(user)) == {"i-1": "1", "i-2": "1"}


async def test_the_script_keys_of_an_event_share_one_slot(cluster: RedisCluster) -> None:
    script_keys, _ = script_call(_event("shopper-42", "i-9"), PARAMS, 0.0)
    slots = {await cluster.cluster_keyslot(key) for key in script_keys}
    assert len(slots) == 1


async def test_a_script_over_the_user_and_global_keys_is_refused_by_the_cluster(cluster: RedisCluster) -> None:
    """Why the layout matters: the former script's keys (seen:<id>, u:{uid}:…, pop:all) span slots."""
    mixed = ["seen:" + str(uuid.uuid4()), keys.user_clicks_key("shopper-42"), keys.user_affinity_key("shopper-42"),
             keys.POPULARITY_ALL_KEY]
    script = cluster.register_script(APPLY_EVENT_LUA)
    with pytest.raises((RedisClusterException, ResponseError), match="(?i)slot"):
        await script(keys=mixed, args=["i", "1.0", "0", "86400", "50", "60", "1", "60", "", ""])


async def test_pop_all_keeps_only_the_top_items(cluster: RedisCluster) -> None:
    writer = FeatureWriter(cluster, PARAMS)  # popularity_max_items=3
    events = [_event(f"u-{item}-{n}", item) for item, times in (("a", 5), ("b", 4), ("c", 3), ("d", 2), ("e", 1))
              for n in range(times)]
    await writer.apply(events)
    assert await cluster.zrevrange(keys.POPULARITY_ALL_KEY, 0, -1) == ["a", "b", "c"]
