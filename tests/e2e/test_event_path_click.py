"""The event path closing the loop over the real stack: user U searches "phone under 20000", clicks the
7th result, and the same search by U then shows that model in the top 3 with its behaviour boost under
`explain: true`, while user V's results stay as they were. Session turns are served back with their
parsed constraints, and the personal feed follows the click. (The click-to-visible delay is measured by
`pickwise-pipeline bench-click`, not asserted here.)"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from pickwise_common import redis as keys

pytestmark = pytest.mark.e2e

QUERY = "phone under 20000"


@pytest.fixture(scope="module")
def gateway(stack, api_key) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("gateway"), headers={"X-API-Key": api_key}, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def shared_redis(stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.config.infra_config().redis_url, decode_responses=True)
    yield client
    client.close()


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll until ``check`` returns something truthy; the bound turns a hang into a failure naming it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _search(gateway: httpx.Client, user: str, k: int = 10) -> list[dict[str, Any]]:
    response = gateway.post("/v1/recommendations", json={"query": QUERY, "k": k, "user_id": user,
                                                         "generate": False, "explain": True})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _model_rank(items: list[dict[str, Any]], item_id: str) -> dict[str, Any] | None:
    for item in items:
        if item["item_id"] == item_id or item_id in item["variant_ids"]:
            return item
    return None


def _make_most_popular(gateway: httpx.Client, shared_redis: redis.Redis, item_id: str) -> None:
    """Make the item the all-time most popular one (purchases by another user), so one more click on it
    leaves every user's normalised popularity of it at 1.0: what V sees cannot move because of U's click."""
    top = shared_redis.zrevrange(keys.POPULARITY_ALL_KEY, 0, 0, withscores=True)
    current = shared_redis.zscore(keys.POPULARITY_ALL_KEY, item_id) or 0.0
    needed = max(0.0, (top[0][1] if top else 0.0) - current) + 5.0
    events = [{"type": "purchase", "user_id": f"w-{uuid.uuid4().hex[:8]}", "item_id": item_id}
              for _ in range(math.ceil(needed / 5.0))]
    for start in range(0, len(events), 500):
        assert gateway.post("/v1/events:batch", json={"events": events[start:start + 500]}).status_code == 202
    target = current + 5.0 * len(events)
    eventually(lambda: (shared_redis.zscore(keys.POPULARITY_ALL_KEY, item_id) or 0.0) >= target,
               "the purchases reached the popularity counters")


def test_click_lifts_the_model_for_that_user_only(gateway, shared_redis) -> None:
    user_u, user_v = f"u-{uuid.uuid4().hex[:10]}", f"v-{uuid.uuid4().hex[:10]}"
    first = _search(gateway, user_u)
    assert len(first) >= 7
    clicked = first[6]["item_id"]
    _make_most_popular(gateway, shared_redis, clicked)
    before_u = _model_rank(_search(gateway, user_u), clicked)
    before_v = [i["item_id"] for i in _search(gateway, user_v)]

    response = gateway.post("/v1/events/click", json={"user_id": user_u, "item_id": clicked, "position": 6,
                                                      "source": "search"})
    assert response.status_code == 202

    def lifted() -> dict[str, Any] | None:
        hit = _model_rank(_search(gateway, user_u), clicked)
        return hit if hit is not None and hit["rank"] <= 3 and hit["boost"]["clicked"] else None

    after_u = eventually(lifted, "the clicked model in U's top 3 with its click boost")
    assert after_u["boost"]["multiplier"] > (before_u["boost"]["multiplier"] if before_u else 1.0)
    assert after_u["boost"]["affinity"] > 0
    after_v = _search(gateway, user_v)
    assert [i["item_id"] for i in after_v] == before_v
    assert not any(i["boost"]["clicked"] for i in after_v)


def test_session_turn_is_served_back_with_its_constraints(gateway, stack) -> None:
    session_id = f"s-{uuid.uuid4().hex[:10]}"
    body = gateway.get("/v1/search", params={"q": QUERY, "k": 3, "session_id": session_id}).json()

    def stored() -> dict[str, Any] | None:
        response = httpx.get(f"{stack.url('session')}/v1/sessions/{session_id}", timeout=5)
        return response.json() if response.status_code == 200 else None

    session = eventually(stored, "the session turn in the session service")
    turn = session["turns"][-1]
    assert turn["query"] == QUERY
    assert turn["parsed"]["price_max_inr"] == 20000
    assert turn["item_ids"] == [i["item_id"] for i in body["items"]]


def test_feed_follows_clicks_and_leaves_out_purchases(gateway, stack) -> None:
    user = f"f-{uuid.uuid4().hex[:10]}"
    cold = gateway.get(f"/v1/users/{user}/recommendations", params={"k": 5}).json()
    assert cold["cold_start"] is True and len(cold["items"]) == 5
    seed = _search(gateway, user, k=3)[0]
    bought = _search(gateway, user, k=3)[1]["item_id"]
    gateway.post("/v1/events/click", json={"user_id": user, "item_id": seed["item_id"]})
    gateway.post("/v1/events", json={"type": "purchase", "user_id": user, "item_id": bought})

    def warm() -> dict[str, Any] | None:
        body = gateway.get(f"/v1/users/{user}/recommendations", params={"k": 5}).json()
        return body if not body["cold_start"] and any(i["reason"] == "similar" for i in body["items"]) else None

    feed = eventually(warm, "the feed built from the user's click")
    ids = [i["item"]["item_id"] for i in feed["items"]]
    assert bought not in ids and seed["item_id"] not in ids
    assert feed["items"][0]["source_item_id"] == seed["item_id"]

    events = httpx.get(f"{stack.url('session')}/v1/users/{user}/events", timeout=5).json()["events"]
    assert {(e["type"], e["item_id"]) for e in events} == {("click", seed["item_id"]), ("purchase", bought)}
