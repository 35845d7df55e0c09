"""The over-shown and dismissed filter (decision 1001): items a user was shown ``overshown_after`` times or
more without engaging, and items they dismissed, leave their search results and feed. The counts come from the
event-consumer's ``user_shown_key`` hash; the page is topped up from over-shown items when too few remain, and
is never emptied by the filter."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from pickwise_common import redis as rd

log = logging.getLogger("pickwise.gateway.overshown")

FILTERED = Counter("pickwise_gateway_overshown_filtered_total", "Items kept off a page by the over-shown or "
                   "dismissed filter, by reason", ["reason"])
SKIPPED = Counter("pickwise_gateway_overshown_skipped_total", "Pages served without the over-shown filter "
                  "because Redis could not say in time")


@dataclass
class ShownState:
    """What Redis says about one user and a set of candidate items."""

    shown: dict[str, int] = field(default_factory=dict)   # item id -> times shown without engagement
    dismissed: set[str] = field(default_factory=set)


def keep(ids: Sequence[str], state: ShownState, *, threshold: int, k: int) -> list[str]:
    """The ids (in their order) a page may show: never a dismissed one; not an over-shown one unless fewer than
    ``k`` would remain (then the least shown over-shown ones fill up); all of ``ids`` when nothing would remain."""
    allowed = [i for i in ids if i not in state.dismissed]
    if threshold > 0:
        fresh = [i for i in allowed if state.shown.get(i, 0) < threshold]
        if len(fresh) < k:
            over = sorted((i for i in allowed if state.shown.get(i, 0) >= threshold),
                          key=lambda i: state.shown.get(i, 0))
            topped = set(fresh) | set(over[:k - len(fresh)])
            fresh = [i for i in allowed if i in topped]
        allowed = fresh
    if not allowed:
        return list(ids)
    FILTERED.labels("dismissed").inc(sum(1 for i in ids if i in state.dismissed))
    FILTERED.labels("overshown").inc(len(ids) - len(allowed) - sum(1 for i in ids if i in state.dismissed))
    return allowed


def counts(raw: Mapping[str, Any] | Sequence[Any]) -> dict[str, int]:
    """``HGETALL`` (a mapping) or ``HMGET`` (values in id order, paired by the caller) into ints."""
    out: dict[str, int] = {}
    for key, value in (raw.items() if isinstance(raw, Mapping) else raw):
        try:
            out[str(key)] = int(value)
        except (TypeError, ValueError):
            continue
    return out


async def shown_state(redis: Any | None, user_id: str | None, catalog: str, ids: Sequence[str], *,
                      budget_ms: float) -> ShownState | None:
    """One Redis round trip (pipeline HMGET + SMISMEMBER over ``ids``); None without a user, without Redis, or
    when Redis fails or is slower than ``budget_ms`` (the page is then served unfiltered)."""
    if redis is None or not user_id or not ids:
        return None
    try:
        pipe = redis.pipeline(transaction=False)
        pipe.hmget(rd.user_shown_key(user_id, catalog), list(ids))
        pipe.smismember(rd.user_dismissed_key(user_id, catalog), list(ids))
        shown_raw, dismissed_raw = await asyncio.wait_for(pipe.execute(), budget_ms / 1000.0)
    except (TimeoutError, *rd.REDIS_ERRORS) as exc:
        SKIPPED.inc()
        log.info("over-shown filter skipped: %s", type(exc).__name__)
        return None
    return ShownState(shown=counts([(i, v) for i, v in zip(ids, shown_raw, strict=True) if v is not None]),
                      dismissed={i for i, hit in zip(ids, dismissed_raw, strict=True) if hit})


async def overshown_ids(redis: Any | None, user_id: str, catalog: str, threshold: int, *,
                        budget_ms: float) -> set[str]:
    """The user's items shown ``threshold`` times or more (the feed passes them as exclusions); empty when the
    filter is off or Redis cannot say in time."""
    if redis is None or threshold <= 0:
        return set()
    try:
        raw = await asyncio.wait_for(redis.hgetall(rd.user_shown_key(user_id, catalog)), budget_ms / 1000.0)
    except (TimeoutError, *rd.REDIS_ERRORS) as exc:
        SKIPPED.inc()
        log.info("over-shown filter skipped: %s", type(exc).__name__)
        return set()
    return {i for i, n in counts(raw or {}).items() if n >= threshold}
