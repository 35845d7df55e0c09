"""The Redis side of an interaction: one Lua script per event that de-duplicates (``SET NX seen:<id>``)
and applies the feature update of ``pickwise_common.features`` atomically, so a redelivered event is a
no-op even when the Postgres insert had already happened before a crash."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from pickwise_common import redis as keys
from pickwise_common.schemas import EVENT_WEIGHTS, EventType, InteractionEvent

# KEYS: 1 seen, 2 clicks, 3 affinity, 4 pop hour bucket, 5 pop all-time, 6 item metadata hash
# ARGV: 1 item_id, 2 weight, 3 now_s, 4 half_life_s, 5 clicks_cap, 6 seen_ttl_s, 7 pop_hour_ttl_s,
#       8 push to the click list ('1'/'0'), 9 user keys' ttl_s
# Returns 1 when applied, 0 when the event had been applied before.
APPLY_EVENT_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[6])) then
  return 0
end
local item = ARGV[1]
local weight = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local half_life = tonumber(ARGV[4])
local user_ttl = tonumber(ARGV[9])
if ARGV[8] == '1' then
  redis.call('LREM', KEYS[2], 0, item)
  redis.call('LPUSH', KEYS[2], item)
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
  redis.call('EXPIRE', KEYS[2], user_ttl)
end
local meta = redis.call('HMGET', KEYS[6], 'brand', 'category')
local dims = {'brand', 'category'}
local touched = false
for i = 1, 2 do
  local value = meta[i]
  if value then
    value = string.lower(string.match(value, '^%s*(.-)%s*$'))
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
end
if touched then
  redis.call('EXPIRE', KEYS[3], user_ttl)
end
redis.call('ZINCRBY', KEYS[4], weight, item)
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[7]))
redis.call('ZINCRBY', KEYS[5], weight, item)
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


def script_call(event: InteractionEvent, params: FeatureParams, now_s: float) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of the script for one event (pure; the hour bucket follows the event's ts)."""
    script_keys = [keys.seen_key(str(event.event_id)), keys.user_clicks_key(event.user_id),
                   keys.user_affinity_key(event.user_id), keys.popularity_hour_key(event.ts),
                   keys.POPULARITY_ALL_KEY, keys.item_key(event.item_id)]
    args = [event.item_id, repr(EVENT_WEIGHTS[event.type]), f"{now_s:.3f}", repr(params.half_life_h * 3600.0),
            str(params.clicks_cap), str(params.seen_ttl_s), str(params.pop_hour_ttl_s),
            "1" if event.type in CLICK_LIST_TYPES else "0", str(params.user_ttl_s)]
    return script_keys, args


class FeatureWriter:
    """Applies events to Redis with one script call each, pipelined per batch."""

    def __init__(self, client: aioredis.Redis, params: FeatureParams) -> None:
        self.client = client
        self.params = params
        self.script = client.register_script(APPLY_EVENT_LUA)

    async def apply(self, events: Sequence[InteractionEvent], *, now_s: float | None = None) -> list[bool]:
        """True per event applied now, False for one applied before (a duplicate)."""
        if not events:
            return []
        now_s = time.time() if now_s is None else now_s
        async with self.client.pipeline(transaction=False) as pipe:
            for event in events:
                script_keys, args = script_call(event, self.params, now_s)
                await self.script(keys=script_keys, args=args, client=pipe)
            results = await pipe.execute()
        return [int(r) == 1 for r in results]
