"""No loss on the event path, over real processes of its own (broker, Redis, Postgres, a gateway and an
event-consumer on free ports, so stopping this broker never disturbs the shared stack):

- 10,000 events posted concurrently: every one the gateway acknowledged (202) is in Postgres once the
  consumer has caught up; 1,000 searches made meanwhile: every impression the gateway published is in the
  impressions table exactly once (decision 1001b);
- with the broker stopped, events get 503 and nothing is acknowledged that is not stored;
- the broker comes back empty: the services re-create the topics, and new events flow without any
  service being restarted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from pickwise_common import redis as rd
from pickwise_common.launcher.infra import (
    Infra,
    InfraConfig,
    postgres_ready,
    redis_ready,
    restart_broker,
    start_broker,
    start_broker_gate,
    start_postgres,
    start_redis,
)
from pickwise_common.launcher.processes import free_port, port_open, wait_until
from pickwise_common.launcher.stack import SERVICES, Stack, StackConfig, prepare_infra

pytestmark = pytest.mark.e2e

KEY = "no-loss-key"
TOTAL = 10_000
BATCH = 500
SINGLES = 1_000


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("event-path-own")
    cfg = InfraConfig(data_dir, broker_port=free_port(), redis_port=free_port(), postgres_port=free_port(),
                      milvus_port=free_port())
    logs = data_dir / "logs"
    infra = Infra(cfg)
    stack: Stack | None = None
    try:
        infra.processes["broker-gate"] = start_broker_gate(cfg, logs)
        infra.processes["broker"] = start_broker(cfg, logs)
        infra.processes["redis"] = start_redis(cfg, logs)
        infra.processes["postgres"] = start_postgres(cfg, logs)
        wait_until(lambda: port_open(cfg.host, cfg.broker_port), timeout_s=30, what="broker")
        wait_until(lambda: redis_ready(cfg.host, cfg.redis_port), timeout_s=30, what="redis")
        wait_until(lambda: postgres_ready(cfg), timeout_s=60, what="postgres", interval_s=0.2)
        asyncio.run(prepare_infra(cfg))
        _seed_catalog_items(cfg.redis_url)
        config = StackConfig(data_dir=data_dir, infra=cfg, service_ports={s.name: free_port() for s in SERVICES},
                             services=("event-consumer", "gateway"), load_catalog=False,
                             extra_env={"PICKWISE_API_KEYS": KEY, "PICKWISE_RATE_LIMIT_PER_MINUTE": "10000000",
                                        "PICKWISE_KAFKA_DELIVERY_TIMEOUT_MS": "5000",
                                        "PICKWISE_TOPIC_CHECK_INTERVAL_S": "1", "PICKWISE_LOG_LEVEL": "WARNING"})
        stack = Stack(config, infra=infra, owns_infra=True)
        for name in config.services:
            stack.start_service(name)
        stack.wait_ready(list(config.services))
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        else:
            infra.stop()


ITEMS = 211


def _seed_catalog_items(redis_url: str) -> None:
    """The items the events name (no catalog is loaded here; the gateway refuses unknown item ids)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for n in range(ITEMS):
            client.hset(rd.item_key(f"nl-i{n}"), mapping={"brand": "nl", "category": "mobile"})
    finally:
        client.close()


def _event(user: int) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": "click", "user_id": f"nl-u{user % 97}",
            "item_id": f"nl-i{user % ITEMS}"}


async def _post_all(gateway: str, events: list[dict[str, Any]]) -> tuple[set[str], dict[int, int]]:
    """Batches of 500 (three at a time) and the last SINGLES one by one (20 at a time). Returns the
    acknowledged event ids and the count of responses by status."""
    accepted: set[str] = set()
    statuses: dict[int, int] = {}
    batched, singles = events[:-SINGLES], events[-SINGLES:]
    limit = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=gateway, headers={"X-API-Key": KEY}, timeout=30,
                                 limits=httpx.Limits(max_connections=24)) as client:
        batch_limit = asyncio.Semaphore(3)

        async def post_batch(chunk: list[dict[str, Any]]) -> None:
            async with batch_limit:
                response = await client.post("/v1/events:batch", json={"events": chunk})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code in (202, 207):
                accepted.update(r["event_id"] for r in response.json()["results"] if r["status"] == "accepted")

        async def post_one(event: dict[str, Any]) -> None:
            async with limit:
                response = await client.post("/v1/events", json=event)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 202:
                assert response.json()["event_id"] == event["event_id"]
                accepted.add(event["event_id"])

        await asyncio.gather(*(post_batch(batched[i:i + BATCH]) for i in range(0, len(batched), BATCH)),
                             *(post_one(e) for e in singles))
    return accepted, statuses


async def _stored(postgres_url: str, ids: set[str]) -> int:
    conn = await asyncpg.connect(postgres_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM events WHERE event_id = ANY($1::uuid[])", list(ids))
    finally:
        await conn.close()


async def _wait_stored(postgres_url: str, ids: set[str], timeout_s: float = 180.0) -> int:
    """Poll until every id is stored; the bound only turns a stall into a failure with the count."""
    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        stored = await _stored(postgres_url, ids)
        if stored == len(ids):
            break
        await asyncio.sleep(0.5)
    return stored


SEARCHES = 1_000
QUERIES = ("samsung phone under 20k", "8gb ram", "best camera phone", "budget 5g mobile")


async def _search_all(gateway: str) -> tuple[list[str], list[str], dict[str, int]]:
    """SEARCHES searches, 4 at a time, three in four by a known user (their impressions update the shown
    counters), the rest anonymous. Returns the request ids of every response, those whose impression the gateway
    logs (a 200, or a 5xx the request path failed with; not a request that admission control refused), and the
    count of responses by status and error code."""
    every: list[str] = []
    logged: list[str] = []
    statuses: dict[str, int] = {}
    limit = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=gateway, headers={"X-API-Key": KEY}, timeout=30) as client:
        async def search(n: int) -> None:
            params = {"q": QUERIES[n % len(QUERIES)], "k": 5, "session_id": f"nl-s{n % 50}"}
            if n % 4:
                params["user_id"] = f"nl-u{n % 97}"
            async with limit:
                response = await client.get("/v1/search", params=params)
            error = {} if response.status_code == 200 else response.json()["error"]
            code = error.get("code", "")
            key = f"{response.status_code} {code} {error.get('message', '')[:80]}".strip()
            statuses[key] = statuses.get(key, 0) + 1
            every.append(response.headers["x-request-id"])
            if response.status_code == 200 or (response.status_code >= 500 and code != "overloaded"):
                logged.append(response.headers["x-request-id"])

        await asyncio.gather(*(search(n) for n in range(SEARCHES)))
    return every, logged, statuses


async def _impression_outcomes(gateway: str) -> dict[str, float]:
    """The gateway's ``pickwise_gateway_impressions_total`` by outcome."""
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as client:
        text = (await client.get("/metrics")).text
    return {sample.labels["outcome"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "pickwise_gateway_impressions_total"}


async def _wait_outcomes(gateway: str, before: dict[str, float], count: int,
                         timeout_s: float = 60.0) -> dict[str, float]:
    """Poll until the gateway has settled the fate of ``count`` more impressions (its queue drained)."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = await _impression_outcomes(gateway)
        delta = {k: v - before.get(k, 0.0) for k, v in now.items()}
        if sum(delta.values()) >= count or time.monotonic() > deadline:
            return delta
        await asyncio.sleep(0.5)


async def _impressions_stored(postgres_url: str, request_ids: list[str]) -> tuple[int, int]:
    """Rows, and distinct request ids among them, of these responses' impressions."""
    conn = await asyncpg.connect(postgres_url)
    try:
        row = await conn.fetchrow("SELECT count(*) AS n, count(DISTINCT request_id) AS d FROM impressions "
                                  "WHERE request_id = ANY($1::text[])", request_ids)
        return row["n"], row["d"]
    finally:
        await conn.close()


async def _wait_impressions(postgres_url: str, request_ids: list[str], expected: int,
                            timeout_s: float = 180.0) -> tuple[int, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        stored = await _impressions_stored(postgres_url, request_ids)
        if stored[0] >= expected or time.monotonic() > deadline:
            return stored
        await asyncio.sleep(0.5)


def _pids(stack: Stack) -> dict[str, int | None]:
    return {name: proc.pid for name, proc in stack.services.items()}


async def test_every_acknowledged_event_and_published_impression_is_stored(own_stack: Stack) -> None:
    gateway, postgres_url = own_stack.url("gateway"), own_stack.config.infra_config().postgres_url
    events = [_event(n) for n in range(TOTAL)]
    outcomes_before = await _impression_outcomes(gateway)

    (accepted, statuses), (request_ids, logged, search_statuses) = await asyncio.gather(
        _post_all(gateway, events), _search_all(gateway))

    stored_events = await _wait_stored(postgres_url, accepted)
    outcomes = await _wait_outcomes(gateway, outcomes_before, len(logged))
    rows, distinct = await _wait_impressions(postgres_url, request_ids, len(logged))
    print(f"no-loss: {len(accepted)} of {TOTAL} events acknowledged ({statuses}), {stored_events} stored; "
          f"{SEARCHES} searches ({search_statuses}), {len(logged)} impressions logged, gateway outcomes "
          f"{outcomes}, {rows} stored ({distinct} distinct request ids)")

    assert stored_events == len(accepted)
    assert len(set(request_ids)) == SEARCHES
    assert outcomes.get("published") == len(logged), outcomes
    assert (rows, distinct) == (len(logged), len(logged))
    assert len(accepted) == TOTAL, statuses


async def test_broker_down_is_503_and_recovers_empty_without_restarting_services(own_stack: Stack) -> None:
    cfg = own_stack.config.infra_config()
    pids = _pids(own_stack)
    own_stack.infra.processes["broker"].stop()
    async with httpx.AsyncClient(base_url=own_stack.url("gateway"), headers={"X-API-Key": KEY},
                                 timeout=30) as client:
        while_down = [_event(n) for n in range(30)]
        responses = await asyncio.gather(*(client.post("/v1/events", json=e) for e in while_down))
        acked_while_down = {e["event_id"] for e, r in zip(while_down, responses, strict=True) if r.status_code == 202}
        assert {r.status_code for r in responses} == {503}
        assert all(r.headers.get("Retry-After") for r in responses)

        restart_broker(own_stack.infra)
        # the broker is back with no topics: the first sends may fail until a service has re-created them
        first_ok: dict[str, Any] | None = None
        deadline = time.monotonic() + 90
        while first_ok is None and time.monotonic() < deadline:
            event = _event(1)
            if (await client.post("/v1/events", json=event)).status_code == 202:
                first_ok = event
            else:
                await asyncio.sleep(0.5)
        assert first_ok is not None, "no event acknowledged after the broker came back"

    after = [_event(n) for n in range(500)]
    accepted, statuses = await _post_all(own_stack.url("gateway"), after + [_event(n) for n in range(SINGLES)])
    accepted.add(first_ok["event_id"])

    assert await _wait_stored(cfg.postgres_url, accepted) == len(accepted), statuses
    assert await _stored(cfg.postgres_url, {e["event_id"] for e in while_down}) == len(acked_while_down) == 0
    assert _pids(own_stack) == pids and all(p.alive() for p in own_stack.services.values())
