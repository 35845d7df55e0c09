"""Faults under load, over a stack of its own (infrastructure and six services on free ports, started by
the launcher as `make run` starts it, with a 400-item slice of the catalog so it starts fast):

- a service SIGKILLed behind the launcher's back comes back (the launcher supervises its children);
- while a load generator posts events (client-made event ids) and searches, the broker, Redis, Postgres,
  Milvus and each service are SIGKILLed one at a time and the launcher restarts them. Afterwards, per
  fault: events acknowledged (202) vs stored in Postgres, 5xx answers to searches (every dependency of a
  search is degradable, so none may be a 5xx), and the seconds until the stack was whole again.

The embedded broker keeps messages in memory (decision 0771): killing it loses the events it had
acknowledged that the consumer had not stored yet. That window is measured, not hidden: every lost event must
be one of those, and every other acknowledged event must be stored — including the sends in flight across
the restart, which the launcher's broker gate (decision 0773) holds back until the restarted broker has its
topics (tansu's memory store would otherwise acknowledge them into a missing topic and drop them).
The results table is printed and written to $PICKWISE_CHAOS_REPORT (default .pickwise/reports/chaos.json).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from pickwise_common.kafka import ALL_TOPICS, TOPIC_DLQ
from pickwise_common.launcher.processes import ManagedProcess, Supervisor, port_open, wait_until
from pickwise_common.launcher.stack import DEFAULT_API_KEY, Stack, StackConfig, start_stack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from traffic import Traffic  # noqa: E402  (a sibling module; tests/ is not a package)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CATALOG_ROWS = 400
INFRA = ("broker", "redis", "postgres", "milvus")
SERVICES = ("retriever", "reranker", "generator", "session", "event-consumer", "gateway")
# the degradation a fault causes while it lasts: recovered = a search no longer reports it
REASONS = {"retriever": {"retriever_unavailable"}, "milvus": {"retriever_unavailable"},
           "reranker": {"reranker_unavailable"}, "session": {"session_unavailable"},
           "generator": {"generator_unavailable"}, "redis": {"features_unavailable", "session_unavailable"}}
RECOVERY_BOUND_S = 180.0  # turns a stack that never recovers into a failure with a message; not a speed check
SETTLE_S = 2.0  # load on the recovered stack before the next fault
REPORT = Path(os.environ.get("PICKWISE_CHAOS_REPORT", REPO / ".pickwise" / "reports" / "chaos.json"))


def _catalog_slice(data_dir: Path) -> Path:
    """The first rows of the Flipkart CSV (item ids fm-00001... as in the full load)."""
    path = data_dir / "catalog-slice.csv"
    with (REPO / "data" / "flipkart_mobiles.csv").open(newline="") as src, path.open("w", newline="") as out:
        rows = csv.reader(src)
        writer = csv.writer(out)
        for n, row in enumerate(rows):
            if n > CATALOG_ROWS:
                break
            writer.writerow(row)
    return path


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[Stack]:
    # not under pytest's basetemp: a concurrent pytest session prunes old basetemps, and Postgres dies when
    # its data directory vanishes
    with tempfile.TemporaryDirectory(prefix="pickwise-chaos-") as tmp:
        yield from _started_stack(Path(tmp))


def _started_stack(data_dir: Path) -> Iterator[Stack]:
    config = StackConfig.on_free_ports(data_dir, load_catalog=True)
    config.extra_env = {"PICKWISE_ENVIRONMENT": "local", "PICKWISE_API_KEYS": DEFAULT_API_KEY,
                        "PICKWISE_RATE_LIMIT_PER_MINUTE": "1000000", "PICKWISE_LOG_LEVEL": "WARNING",
                        "PICKWISE_CATALOG_PATH": str(_catalog_slice(data_dir)),
                        "PICKWISE_KAFKA_DELIVERY_TIMEOUT_MS": "5000", "PICKWISE_TOPIC_CHECK_INTERVAL_S": "1"}
    stack = start_stack(config)
    try:
        yield stack
    finally:
        stack.stop()
        # the services' logs outlive the temp dir, for reading a failure
        shutil.copytree(data_dir / "logs", REPORT.parent / "chaos-logs", dirs_exist_ok=True)


def _process(stack: Stack, name: str) -> tuple[ManagedProcess, Supervisor]:
    assert stack.supervisor is not None and stack.infra is not None and stack.infra.supervisor is not None
    if name in INFRA:
        return stack.infra.processes[name], stack.infra.supervisor
    return stack.services[name], stack.supervisor


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigkilled_service_is_restarted_by_the_launcher(chaos_stack: Stack) -> None:
    proc, supervisor = _process(chaos_stack, "event-consumer")
    killed_pid = proc.pid

    os.kill(killed_pid or 0, signal.SIGKILL)
    wait_until(lambda: proc.pid != killed_pid and _ready(chaos_stack.url("event-consumer")),
               timeout_s=RECOVERY_BOUND_S, what="event-consumer back after SIGKILL", interval_s=0.2)

    assert proc.alive()
    assert any(r.name == "event-consumer" and r.exit_code == -signal.SIGKILL for r in supervisor.restarts)


async def _catalog_items(postgres_url: str) -> list[str]:
    conn = await asyncpg.connect(postgres_url, timeout=5)
    try:
        return [row["item_id"] for row in await conn.fetch("SELECT item_id FROM items ORDER BY item_id")]
    finally:
        await conn.close()


async def _stored_ids(postgres_url: str, ids: set[str]) -> set[str]:
    conn = await asyncpg.connect(postgres_url, timeout=5)
    try:
        rows = await conn.fetch("SELECT event_id::text AS id FROM events WHERE event_id = ANY($1::uuid[])", list(ids))
    finally:
        await conn.close()
    return {row["id"] for row in rows}


@dataclass
class Probe:
    """One fault's way back: the process restarted, an event acknowledged and stored, a search that no
    longer reports the fault's degradation."""

    stack: Stack
    fault: str
    restarts_before: int
    event_id: str | None = None
    event_stored: bool = False
    search_ok: bool = False

    async def recovered(self, client: httpx.AsyncClient) -> bool:
        proc, supervisor = _process(self.stack, self.fault)
        if len(supervisor.restarts) <= self.restarts_before or not proc.alive():
            return False
        cfg = self.stack.config.infra_config()
        if self.fault == "milvus" and not port_open(cfg.host, cfg.milvus_port, timeout_s=0.05):
            return False
        try:
            if self.fault in SERVICES and (await client.get(self.stack.url(self.fault) + "/readyz")).status_code != 200:
                return False
            if self.event_id is None:
                event = {"event_id": str(uuid.uuid4()), "type": "click", "user_id": "chaos-probe",
                         "item_id": "fm-00001"}
                if (await client.post("/v1/events", json=event)).status_code == 202:
                    self.event_id = event["event_id"]
            if self.event_id is not None and not self.event_stored:
                self.event_stored = bool(await _stored_ids(cfg.postgres_url, {self.event_id}))
            if not self.search_ok:
                response = await client.post("/v1/recommendations", json={
                    "query": "samsung phone under 20000", "k": 5, "user_id": "chaos-probe",
                    "session_id": "chaos-probe"})
                self.search_ok = response.status_code == 200 and not (
                    set(response.json()["degradation_reasons"]) & REASONS.get(self.fault, set()))
        except (httpx.HTTPError, OSError, asyncpg.PostgresError):
            return False
        return self.event_stored and self.search_ok


async def _recover(stack: Stack, fault: str, restarts_before: int, killed_at: float) -> float:
    probe = Probe(stack, fault, restarts_before)
    async with httpx.AsyncClient(base_url=stack.url("gateway"), headers={"X-API-Key": DEFAULT_API_KEY},
                                 timeout=10) as client:
        while not await probe.recovered(client):
            assert time.monotonic() - killed_at < RECOVERY_BOUND_S, f"{fault}: not recovered: {probe}"
            await asyncio.sleep(0.25)
    return time.monotonic() - killed_at


async def _drain(postgres_url: str, acked: set[str], must_store: set[str]) -> set[str]:
    """Wait until the consumer has stored every id of ``must_store`` (events in a retry topic take up to a
    minute more); returns the acknowledged ids stored by then."""
    deadline = time.monotonic() + RECOVERY_BOUND_S
    stored = await _stored_ids(postgres_url, acked)
    while not must_store <= stored and time.monotonic() < deadline:
        await asyncio.sleep(1)
        stored = await _stored_ids(postgres_url, acked)
    return stored


async def _topics_holding(bootstrap: str, ids: set[str]) -> dict[str, list[str]]:
    """Where each of ``ids`` still sits on the broker (the interactions topic, a retry stage, the DLQ): a lost
    event on a topic was skipped by the consumer, one in the DLQ can be replayed, one nowhere the broker lost."""
    found: dict[str, list[str]] = {}
    if not ids:
        return found
    consumer = AIOKafkaConsumer(*ALL_TOPICS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            for record in (r for part in batch.values() for r in part):
                text = (record.value or b"").decode(errors="replace")
                for i in ids:
                    if i in text:
                        found.setdefault(i, []).append(f"{record.topic}[{record.partition}]@{record.offset}")
    finally:
        await consumer.stop()
    return found


def _report(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """The table on stdout (``pytest -s`` shows it) and everything in the JSON report."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"faults": rows, **summary}, indent=2) + "\n")
    print(f"\n{'fault':<16}{'acked':>7}{'stored':>8}{'lost':>6}{'5xx':>5}{'shed':>6}{'no ans':>8}{'recovery s':>12}")
    for row in rows:
        recovery = "-" if row["recovery_s"] is None else row["recovery_s"]
        print(f"{row['fault']:<16}{row['acknowledged']:>7}{row['stored']:>8}{row['lost_at_broker_kill']:>6}"
              f"{row['degradable_5xx']:>5}{row['shed_503']:>6}{row['no_answer']:>8}{recovery:>12}")
    print(f"{summary}\nreport: {REPORT}")


async def test_faults_under_load_lose_no_acknowledged_event_and_answer_no_5xx(chaos_stack: Stack) -> None:
    stack = chaos_stack
    postgres_url = stack.config.infra_config().postgres_url
    traffic = Traffic(stack.url("gateway"), DEFAULT_API_KEY, events_per_s=15, searches_per_s=1.5,
                      recommendations_per_s=0.5, items=await _catalog_items(postgres_url))
    traffic.phase = "baseline"
    stop = asyncio.Event()
    runner = asyncio.create_task(traffic.run(stop))
    recovery_s: dict[str, float] = {}
    killed_at: dict[str, float] = {}
    stored_before_broker_kill: set[str] = set()
    try:
        await asyncio.sleep(5)
        # the broker kill measures the steady-state window: first let the consumer (re-joining after the
        # previous test's kill) catch up with the baseline, or its whole backlog counts as the window
        for _ in range(int(RECOVERY_BOUND_S * 2)):
            if await _stored_ids(postgres_url, set(traffic.acked_ids)):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)
        for fault in ("broker", "redis", "postgres", "milvus", *SERVICES):
            proc, supervisor = _process(stack, fault)
            restarts_before = len(supervisor.restarts)
            if fault == "broker":
                stored_before_broker_kill = await _stored_ids(postgres_url, set(traffic.acked_ids))
            traffic.phase = fault
            killed_at[fault] = time.monotonic()
            os.kill(proc.pid or 0, signal.SIGKILL)
            recovery_s[fault] = round(await _recover(stack, fault, restarts_before, killed_at[fault]), 1)
            await asyncio.sleep(SETTLE_S)
        traffic.phase = "after"
        await asyncio.sleep(SETTLE_S)
    finally:
        stop.set()
        await runner

    # sent before the broker kill (the first fault) and acknowledged, even if the 202 arrived after it,
    # but not stored when it died: what the in-memory broker may take with it
    unstored_at_kill = set(traffic.tally("baseline").acknowledged) - stored_before_broker_kill
    # acknowledged by the restarted broker before the stack was whole again: sends in flight across the
    # restart, retried by the producer; the broker gate (decision 0773) makes them land in real topics, so
    # they are not at risk — counted apart to show it
    broker_back = killed_at["broker"] + recovery_s["broker"]
    in_restart = {i for i in traffic.tally("broker").acknowledged
                  if killed_at["broker"] <= traffic.acked_at[i] <= broker_back}
    at_risk = unstored_at_kill
    stored = await _drain(postgres_url, traffic.acked_ids, traffic.acked_ids - at_risk)
    lost = traffic.acked_ids - stored
    broker_kill = {"acknowledged_unstored_at_kill": len(unstored_at_kill), "lost": len(lost & unstored_at_kill),
                   "acknowledged_during_restart": len(in_restart), "lost_during_restart": len(lost & in_restart)}
    rows = []
    for phase, tally in traffic.tallies.items():
        acked = set(tally.acknowledged)
        rows.append({"fault": phase, "acknowledged": len(acked), "stored": len(acked & stored),
                     "lost_at_broker_kill": len(acked & lost & at_risk), "degradable_5xx": tally.search_5xx,
                     "shed_503": tally.shed, "search_errors": dict(tally.search_errors),
                     "no_answer": tally.searches.get("no answer", 0), "recovery_s": recovery_s.get(phase),
                     "events": dict(tally.events), "searches": dict(tally.searches),
                     "degraded": dict(tally.degraded)})
    phase_of = {i: phase for phase, tally in traffic.tallies.items() for i in tally.acknowledged}
    held = await _topics_holding(stack.config.infra_config().kafka_bootstrap, lost)
    lost_events = [{"event_id": i, "phase": phase_of[i], "in_dlq": any(t.startswith(TOPIC_DLQ) for t in
                                                                     held.get(i, ())),
                    "on_topics": held.get(i, []), "acked_s_after_kill":
                    round(traffic.acked_at[i] - killed_at[phase_of[i]], 2) if phase_of[i] in killed_at else None}
                   for i in sorted(lost, key=traffic.acked_at.__getitem__)]
    _report(rows, {"broker_kill": broker_kill, "lost_events": lost_events, "skipped_in_flight_cap": traffic.skipped})

    assert [row["fault"] for row in rows if row["degradable_5xx"]] == [], rows
    outside = lost - at_risk
    assert not outside, f"{len(outside)} acknowledged events lost outside the broker's in-memory window: " \
                        f"{[e for e in lost_events if e['event_id'] in outside]}"
    assert all(row["acknowledged"] == row["stored"] + row["lost_at_broker_kill"] for row in rows), rows
