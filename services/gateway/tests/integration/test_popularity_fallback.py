"""The popularity fallback against the real Redis (a database number of its own, so the shared stack's
keys are untouched): tier order 24 h → 7 d → all-time → rating, filters, and item metadata from ingest's
hashes."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from pickwise_common import redis as rd
from pickwise_common.schemas import Constraints
from pickwise_gateway.popularity import popular_items

pytestmark = pytest.mark.integration

TEST_DB = 13
NOW = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)


def _item(item_id: str, brand: str, price: float) -> str:
    return json.dumps({"item_id": item_id, "title": f"{brand} {item_id}", "brand": brand, "model": item_id,
                       "price_inr": price, "price_band": "mid", "group_id": item_id, "rating": 4.0})


@pytest.fixture
async def redis(infra):
    client = aioredis.Redis.from_url(infra.config.redis_url.rsplit("/", 1)[0] + f"/{TEST_DB}",
                                     decode_responses=True)
    await client.flushdb()
    items = {"hot": ("samsung", 15000), "week": ("apple", 70000), "ever": ("samsung", 9000),
             "rated": ("xiaomi", 12000), "pricey": ("samsung", 90000)}
    for item_id, (brand, price) in items.items():
        await client.hset(rd.item_key(item_id), "json", _item(item_id, brand, price))
    await client.zadd(rd.popularity_hour_key(NOW - timedelta(hours=2)), {"hot": 5})
    await client.zadd(rd.popularity_hour_key(NOW - timedelta(days=3)), {"week": 50, "hot": 1})
    await client.zadd(rd.POPULARITY_ALL_KEY, {"ever": 500, "week": 400, "pricey": 300, "unknown-id": 900})
    await client.zadd(rd.catalog_by_rating_key(), {"rated": 4.9, "ever": 4.1})
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


async def test_tiers_fill_in_order(redis) -> None:
    chosen, first_tier = await popular_items(redis, 5, now=NOW)
    assert [item.item_id for item, _ in chosen] == ["hot", "week", "ever", "pricey", "rated"]
    assert first_tier == "24h"


async def test_filters_apply_to_the_fallback(redis) -> None:
    chosen, _ = await popular_items(redis, 5, filters=Constraints(brands=["samsung"], price_max_inr=20000),
                                    now=NOW)
    assert [item.item_id for item, _ in chosen] == ["hot", "ever"]


async def test_only_rating_order_when_nothing_is_popular(redis) -> None:
    await redis.delete(rd.POPULARITY_ALL_KEY, rd.popularity_hour_key(NOW - timedelta(hours=2)),
                       rd.popularity_hour_key(NOW - timedelta(days=3)))
    chosen, first_tier = await popular_items(redis, 2, now=NOW)
    assert [item.item_id for item, _ in chosen] == ["rated", "ever"]
    assert first_tier == "rating"


async def test_each_catalog_reads_its_own_keys(redis) -> None:
    retail = {"item_id": "or-85123A", "catalog": "retail", "title": "WHITE HANGING HEART T-LIGHT HOLDER",
              "price": 2.55, "currency": "GBP", "category": "holder"}
    await redis.hset(rd.item_key("or-85123A", "retail"), "json", json.dumps(retail))
    await redis.zadd(rd.popularity_hour_key(NOW - timedelta(hours=1), "retail"), {"or-85123A": 3})

    retail_chosen, retail_tier = await popular_items(redis, 5, now=NOW, catalog="retail")
    flipkart_chosen, _ = await popular_items(redis, 5, now=NOW)

    assert [(item.item_id, item.currency, item.price) for item, _ in retail_chosen] == [("or-85123A", "GBP", 2.55)]
    assert retail_tier == "24h"
    assert "or-85123A" not in {item.item_id for item, _ in flipkart_chosen}


async def test_hourly_scores_are_summed_across_hours(redis) -> None:
    await redis.zadd(rd.popularity_hour_key(NOW - timedelta(hours=3)), {"ever": 4, "hot": 1})
    await redis.zadd(rd.popularity_hour_key(NOW - timedelta(hours=5)), {"ever": 3})

    chosen, _ = await popular_items(redis, 2, now=NOW)

    # 24 h: ever 4 + 3 = 7 beats hot 5 + 1 = 6 (hot alone tops the hour with the highest count)
    assert [(item.item_id, pop) for item, pop in chosen] == [("ever", 1.0), ("hot", round(6 / 7, 6))]
