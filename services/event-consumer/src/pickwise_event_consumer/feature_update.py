"""The Redis side of an interaction: one Lua script per event that de-duplicates (``SET NX`` of the
event's mark) and applies the user's feature update of ``pickwise_common.features`` atomically, so a
redelivered event is a no-op even when the Postgres insert had already happened before a crash.

The script touches the user's keys only (``u:{uid}:…``, one hash slot), so it runs on Redis Cluster; the
item's brand and category are read before it, and the global popularity (``pop:h:<hour>``, ``pop:all``,
other slots) is updated after it, for the events it applied, with plain single-key commands (decision 0765).
Every key is the event's catalog's (``pickwise_common.redis`` key functions); the script also adds the
event's CF weight to the user's history hash (the fold-in input, decision 0813) and a dismiss to the user's
dismissed set; a click, add to cart or purchase deletes the item's field of the user's shown-items hash.

Impressions have a script of their own in the same slot: the same ``SET NX`` mark, then one ``HINCRBY`` per shown
item in the user's shown-items hash (``user_shown_key``, read by the gateway's over-shown filter, decision
1001b)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript

from pickwise_common import cf
from pickwise_common import redis as keys
from pickwise_common.schemas import EVENT_WEIGHTS, EventType, ImpressionEvent, InteractionEvent

# KEYS: 1 the event's seen mark, 2 clicks, 3 affinity, 4 CF history, 5 dismissed, 6 shown items (all in the
#       user's slot)
# ARGV: 1 item_id, 2 weight, 3 now_s, 4 half_life_s, 5 clicks_cap, 6 seen_ttl_s, 7 push to the click list
#       ('1'/'0'), 8 user keys' ttl_s, 9 item brand, 10 item category ('' when unknown), 11 CF history weight
#       ('0' adds nothing), 12 dismiss ('1'/'0'), 13 history and dismissed keys' ttl_s
# Returns 1 when applied, 0 when the event had been applied before.
APPLY_EVENT_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[6])) then
  return 0
end
local item = ARGV[1]
local weight = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local half_life = tonumber(ARGV[4])
local user_ttl = tonumber(ARGV[8])
if ARGV[7] == '1' then
  redis.call('LREM', KEYS[2], 0, item)
  redis.call('LPUSH', KEYS[2], item)
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
  redis.call('EXPIRE', KEYS[2], user_ttl)
  redis.call('HDEL', KEYS[6], item)
end
local history_weight = tonumber(ARGV[11])
local long_ttl = tonumber(ARGV[13])
if history_weight > 0 then
  redis.call('HINCRBYFLOAT', KEYS[4], item, ARGV[11])
  redis.call('EXPIRE', KEYS[4], long_ttl)
end
if ARGV[12] == '1' then
  redis.call('SADD', KEYS[5], item)
  redis.call('EXPIRE', KEYS[5], long_ttl)
end
local dims = {'brand', 'category'}
local touched = false
if weight <= 0 then dims = {} end
for i = 1, #dims do
  local value = string.lower(string.match(ARGV[8 + i], '^%s*(.-)%s*$'))
  if value ~= '' then
    local field = dims[i] .. ':' .. value
    local old = tonumber(redis.call('HGET', KEYS[3], field) or '0') or 0
    local stamp = tonumber(redis.call('HGET', KEYS[3], field .. ':t') or ARGV[3]) or now
    local age = now - stamp
    if age < 0 then age = 0 end
    local score = old * math.pow(0.5, age / half_life) + weight
    redis.call('HSET', KEYS[3], field, string.format('%.10g', score), field .. ':t', ARGV[3])
    touched = true
  end
end
if touched then
  redis.call('EXPIRE', KEYS[3], user_ttl)
end
return 1
"""

# KEYS: 1 the impression's seen mark, 2 the user's shown-items hash (one slot)
# ARGV: 1 seen_ttl_s, 2 shown hash ttl_s, 3.. the item ids shown (each once)
# Returns 1 when applied, 0 when the impression had been applied before.
APPLY_IMPRESSION_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  return 0
end
for i = 3, #ARGV do
  redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
end
if #ARGV >= 3 then
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
end
return 1
"""

# Interactions that say "this user wants this": they enter the recent-clicks list the boost reads.
CLICK_LIST_TYPES = frozenset({EventType.click, EventType.add_to_cart, EventType.purchase})


@dataclass(frozen=True)
class FeatureParams:
    half_life_h: float
    clicks_cap: int
    seen_ttl_s: int
    pop_hour_ttl_s: int
    user_ttl_s: int
    # pop:all (and each hourly bucket) keeps this many top items: bounded whatever ids arrive
    popularity_max_items: int = 100_000
    # the CF history hash and the dismissed set outlive the short-term features: a purchase history is
    # the fold-in input for months, and a dismissed item must stay hidden
    history_ttl_s: int = 400 * 24 * 3600
    # the shown-items hash lives this long after the user's last impression (refreshed by each)
    shown_ttl_s: int = 30 * 24 * 3600


@dataclass(frozen=True)
class ItemMeta:
    brand: str = ""
    category: str = ""


def history_weight(event: InteractionEvent) -> float:
    """What the event adds to the user's CF history hash (``cf.EVENT_CF_WEIGHT``): a purchase line
    1 + log1p(quantity), a click or add-to-cart its fixed weight, anything else nothing."""
    return cf.event_cf_weight(event.type.value, event.quantity)


def script_call(event: InteractionEvent, params: FeatureParams, now_s: float,
                meta: ItemMeta | None = None) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of the script for one event (pure); every key is the event's catalog's."""
    meta = meta or ItemMeta()
    user, catalog = event.user_id, event.catalog
    script_keys = [keys.user_seen_key(user, str(event.event_id), catalog), keys.user_clicks_key(user, catalog),
                   keys.user_affinity_key(user, catalog), keys.user_history_key(user, catalog),
                   keys.user_dismissed_key(user, catalog), keys.user_shown_key(user, catalog)]
    args = [event.item_id, repr(EVENT_WEIGHTS[event.type]), f"{now_s:.3f}", repr(params.half_life_h * 3600.0),
            str(params.clicks_cap), str(params.seen_ttl_s), "1" if event.type in CLICK_LIST_TYPES else "0",
            str(params.user_ttl_s), meta.brand, meta.category, f"{history_weight(event):.6g}",
            "1" if event.type == EventType.dismiss else "0", str(params.history_ttl_s)]
    return script_keys, args


def impression_script_call(event: ImpressionEvent, params: FeatureParams) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of the impression script (pure): each shown item counted once. The event must have a
    user_id (anonymous impressions update no counter)."""
    if event.user_id is None:
        raise ValueError("an anonymous impression has no shown-items hash")
    item_ids = list(dict.fromkeys(item.item_id for item in event.items))
    script_keys = [keys.user_seen_key(event.user_id, str(event.event_id), event.catalog),
                   keys.user_shown_key(event.user_id, event.catalog)]
    return script_keys, [str(params.seen_ttl_s), str(params.shown_ttl_s), *item_ids]


class FeatureWriter:
    """Applies events to Redis: the per-user script for each (pipelined on one Redis, concurrent calls on a
    cluster, where a pipeline cannot carry scripts), then popularity for those applied now."""

    def __init__(self, client: aioredis.Redis | RedisCluster, params: FeatureParams) -> None:
        self.client = client
        self.params = params
        self.script = client.register_script(APPLY_EVENT_LUA)
        self.impression_script = client.register_script(APPLY_IMPRESSION_LUA)
        self.cluster = isinstance(client, RedisCluster)

    async def _item_meta(self, items: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ItemMeta]:
        """Brand and category per (catalog, item id) from the catalog's item hashes."""
        unique = list(dict.fromkeys(items))
        async with self.client.pipeline(transaction=False) as pipe:
            for catalog, item_id in unique:
                pipe.hmget(keys.item_key(item_id, catalog), "brand", "category")
            rows = await pipe.execute()
        return {pair: ItemMeta(brand or "", category or "") for pair, (brand, category) in zip(unique, rows,
                                                                                              strict=True)}

    async def _run_scripts(self, calls: Sequence[tuple[list[str], list[str]]], script: AsyncScript | None = None
                           ) -> list[int]:
        script = script or self.script
        if self.cluster:
            if not calls:
                return []
            # the first call alone: on a node that lacks the script (fresh or restarted) it loads it once; many
            # concurrent loads through one cluster client race on its new connections (redis-py)
            first = await script(keys=calls[0][0], args=calls[0][1])
            rest = await asyncio.gather(*(script(keys=k, args=a) for k, a in calls[1:]))
            return [first, *rest]
        async with self.client.pipeline(transaction=False) as pipe:
            for script_keys, args in calls:
                await script(keys=script_keys, args=args, client=pipe)
            return await pipe.execute()

    async def _popularity(self, events: Sequence[InteractionEvent]) -> None:
        """Hourly and all-time counts of the events applied now; each set trimmed to its top items."""
        if not events:
            return
        buckets = set()
        totals = set()
        async with self.client.pipeline(transaction=False) as pipe:
            for event in events:
                weight = EVENT_WEIGHTS[event.type]
                if weight <= 0:  # a dismiss is no vote for the item
                    continue
                bucket = keys.popularity_hour_key(event.ts, event.catalog)
                total = keys.popularity_all_key(event.catalog)
                buckets.add(bucket)
                totals.add(total)
                pipe.zincrby(bucket, weight, event.item_id)
                pipe.zincrby(total, weight, event.item_id)
            for bucket in buckets:
                pipe.expire(bucket, self.params.pop_hour_ttl_s)
            for key in (*buckets, *totals):
                # ranks ascend by score: drop everything below the top popularity_max_items
                pipe.zremrangebyrank(key, 0, -(self.params.popularity_max_items + 1))
            await pipe.execute()

    async def apply(self, events: Sequence[InteractionEvent], *, now_s: float | None = None) -> list[bool]:
        """True per event applied now, False for one applied before (a duplicate)."""
        if not events:
            return []
        now_s = time.time() if now_s is None else now_s
        meta = await self._item_meta([(e.catalog, e.item_id) for e in events])
        results = await self._run_scripts([script_call(e, self.params, now_s, meta[(e.catalog, e.item_id)])
                                           for e in events])
        applied = [int(r) == 1 for r in results]
        # after the user script: a crash in between loses these increments (never doubles them), and the
        # popularity can be rebuilt from the events table
        await self._popularity([e for e, done in zip(events, applied, strict=True) if done])
        return applied

    async def apply_impressions(self, events: Sequence[ImpressionEvent]) -> list[bool | None]:
        """Count each impression's items in its user's shown-items hash. Per event: True when applied now,
        False when applied before (a duplicate), None for an anonymous one (nothing to count)."""
        counted = [e for e in events if e.user_id is not None]
        if not counted:
            return [None] * len(events)
        results = iter(await self._run_scripts([impression_script_call(e, self.params) for e in counted],
                                               self.impression_script))
        return [None if e.user_id is None else int(next(results)) == 1 for e in events]
