"""Popularity fallback read straight from Redis when the retriever cannot answer (DESIGN §5):
the last 24 hourly counters, then the last 7 days, then all-time, then the catalog's rating order, each
from the keys of one catalog (``pickwise_common.redis`` key functions). Item metadata comes from the
hashes ``item:<id>`` (field ``json``) that ingest writes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from pickwise_common import redis as rd
from pickwise_common.constraints import matches
from pickwise_common.schemas import Constraints, Item

log = logging.getLogger("pickwise.gateway.popularity")

ITEM_JSON_FIELD = "json"
PER_TIER_TOP = 500     # ids kept per tier, and read from each key of a tier


def hour_keys(now: datetime, hours: int, catalog: str | None = None) -> list[str]:
    """``pop:h:<yyyymmddhh>`` of ``catalog`` for the current hour and the ``hours - 1`` before it."""
    return [rd.popularity_hour_key(now - timedelta(hours=h), catalog) for h in range(hours)]


# ZREVRANGE … WITHSCORES of one key, answered as one "member\nscore\nmember\n…" string: redis-py parses a
# reply element by element in Python (~25 µs each on a loaded 2-core box), so 168 keys × their members as
# separate elements cost far more than 168 strings split in C. The script touches only its one key, so it
# routes to that key's slot on Redis Cluster. Member ids never hold a newline (ID pattern of the API).
TOP_OF_KEY_LUA = ("return table.concat(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES'), "
                  "'\\n')")


def parse_top(raw: str | bytes | None) -> list[tuple[str, float]]:
    """``"a\n3\nb\n1"`` (TOP_OF_KEY_LUA's answer) -> ``[("a", 3.0), ("b", 1.0)]``."""
    if not raw:
        return []
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    parts = text.split("\n")
    return [(member, float(score)) for member, score in zip(parts[0::2], parts[1::2], strict=True)]


def sum_scores(rows_per_key: list[list[tuple[str, float]]], top: int = PER_TIER_TOP) -> list[tuple[str, float]]:
    """Scores summed per id over several keys' rows, best first (ties by id), the first ``top``."""
    totals: dict[str, float] = {}
    for rows in rows_per_key:
        for member, score in rows or []:
            totals[member] = totals.get(member, 0.0) + float(score)
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


async def _summed(redis: Any, keys: list[str]) -> list[tuple[str, float]]:
    """Top ids over several sorted sets, scores summed, best first (decision 0807): the top ``PER_TIER_TOP`` of
    each key (ZREVRANGE WITHSCORES, one single-key script per key, all in one pipeline) summed here. Each call
    touches one key, so this works on a Redis Cluster where the hourly keys live in different slots (a
    ZUNIONSTORE across them is a CROSSSLOT error); an id outside every hour's top ``PER_TIER_TOP`` is not
    counted, which only a catalog with more than that many items clicked in every hour could notice."""
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.eval(TOP_OF_KEY_LUA, 1, key, PER_TIER_TOP)
    return sum_scores([parse_top(raw) for raw in await pipe.execute()])


async def load_items(redis: Any, item_ids: list[str], catalog: str | None = None) -> dict[str, Item]:
    if not item_ids:
        return {}
    pipe = redis.pipeline(transaction=False)
    for item_id in item_ids:
        pipe.hget(rd.item_key(item_id, catalog), ITEM_JSON_FIELD)
    items: dict[str, Item] = {}
    for item_id, raw in zip(item_ids, await pipe.execute(), strict=True):
        if raw is None:
            continue
        try:
            items[item_id] = Item.model_validate_json(raw)
        except ValidationError as exc:
            log.warning("item %s in Redis is not a valid item: %s", item_id, exc.errors()[:1])
    return items


async def popular_items(redis: Any, k: int, *, filters: Constraints | None = None, now: datetime | None = None,
                        catalog: str | None = None) -> tuple[list[tuple[Item, float]], str]:
    """Up to ``k`` items, most popular first, each with its popularity normalised within its tier (0..1),
    and the tier that supplied the first.

    Tiers are walked in order and later tiers only fill what earlier ones left, so a quiet last day
    still yields a full list."""
    now = now or datetime.now(UTC)
    tiers: list[tuple[str, list[str]]] = [
        ("24h", hour_keys(now, 24, catalog)),
        ("7d", hour_keys(now, 24 * 7, catalog)),
        ("all", [rd.popularity_all_key(catalog)]),
        ("rating", [rd.catalog_by_rating_key(catalog)]),
    ]
    chosen: list[tuple[Item, float]] = []
    seen: set[str] = set()
    first_tier = "none"
    for tier, keys in tiers:
        ranked = [(i, s) for i, s in await _summed(redis, keys) if i not in seen]
        if not ranked:
            continue
        top = ranked[0][1] or 1.0
        added = False
        chunk = max(2 * k, 50)
        # item metadata is fetched a chunk at a time: usually the first chunk fills the list
        for offset in range(0, len(ranked), chunk):
            part = ranked[offset:offset + chunk]
            items = await load_items(redis, [i for i, _ in part], catalog)
            for item_id, score in part:
                seen.add(item_id)
                item = items.get(item_id)
                if item is None or not matches(item, filters):
                    continue
                chosen.append((item, round(score / top if top > 0 else 0.0, 6)))
                added = True
                if len(chosen) >= k:
                    break
            if len(chosen) >= k:
                break
        if added and first_tier == "none":
            first_tier = tier
        if len(chosen) >= k:
            break
    return chosen, first_tier
