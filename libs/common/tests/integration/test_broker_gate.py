"""The embedded broker behind its gate (decision 0773), against the real tansu binary: a producer sending
across a SIGKILL of the broker loses nothing it was acknowledged after the kill.

Before the gate, tansu's memory store acknowledged the sends a producer retried into the restarted, still
topic-less broker and dropped them when the topics were created (decision 0771): this test lost a few events
on every run."""

import asyncio
import os
import signal
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pickwise_common.kafka import TOPIC_INTERACTIONS
from pickwise_common.launcher.broker_gate import read_origin, write_origin
from pickwise_common.launcher.infra import Infra, InfraConfig, origin_file, start_broker, start_broker_gate
from pickwise_common.launcher.processes import free_port, port_open, wait_until

pytestmark = pytest.mark.integration


def test_origin_file_round_trips_and_tolerates_garbage(tmp_path) -> None:
    path = tmp_path / "origin"
    assert read_origin(path) is None
    write_origin(path, "127.0.0.1", 4242)
    assert read_origin(path) == ("127.0.0.1", 4242)
    path.write_text("not an address")
    assert read_origin(path) is None


@pytest.fixture
def broker_only(tmp_path):
    cfg = InfraConfig(tmp_path, broker_port=free_port(), redis_port=free_port(), postgres_port=free_port(),
                      milvus_port=free_port())
    infra = Infra(cfg)
    logs = tmp_path / "logs"
    infra.processes["broker-gate"] = start_broker_gate(cfg, logs)
    infra.processes["broker"] = start_broker(cfg, logs)
    wait_until(lambda: port_open(cfg.host, cfg.broker_port), timeout_s=30, what="broker gate")
    infra.supervise()
    yield infra
    infra.stop()


async def _read_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> set[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    got: set[bytes] = set()
    try:
        deadline = time.monotonic() + timeout_s
        while len(got) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.update(r.value for r in records if r.value is not None)
    finally:
        await consumer.stop()
    return got


async def test_sends_in_flight_across_a_broker_kill_are_not_lost(broker_only: Infra) -> None:
    infra = broker_only
    bootstrap = infra.config.kafka_bootstrap
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False,
                                request_timeout_ms=20_000)
    await producer.start()
    acked: list[bytes] = []
    pending: set[asyncio.Task] = set()

    async def send(value: bytes) -> None:
        try:
            await producer.send_and_wait(TOPIC_INTERACTIONS, value, key=value)
            acked.append(value)
        except Exception:  # a send the producer gave up on was not acknowledged: not counted
            pass

    async def load(stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            task = asyncio.create_task(send(str(n).encode()))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(0.005)

    stop = asyncio.Event()
    runner = asyncio.create_task(load(stop))
    try:
        await asyncio.sleep(1.0)
        old = infra.processes["broker"]
        old_origin = read_origin(origin_file(infra.config))
        # freeze it first: once the acks already on the wire are read, nothing it stored is acknowledged
        # any more, so every later ack comes from the restarted instance and must be readable there
        os.kill(old.pid or 0, signal.SIGSTOP)
        await asyncio.sleep(0.5)
        acked_before_kill = len(acked)
        os.kill(old.pid or 0, signal.SIGKILL)
        # the supervisor restarts it on a new private port, creates the topics, then opens the gate
        for _ in range(600):
            if read_origin(origin_file(infra.config)) not in (None, old_origin):
                break
            await asyncio.sleep(0.05)
        assert read_origin(origin_file(infra.config)) != old_origin, "broker not restarted behind the gate"
        await asyncio.sleep(3.0)
    finally:
        stop.set()
        await runner
        if pending:
            await asyncio.wait(pending, timeout=30)
        await producer.stop()

    after_kill = acked[acked_before_kill:]
    assert len(after_kill) > 100, "the load did not go on across the restart"
    assert any(r.name == "broker" and r.exit_code == -signal.SIGKILL for r in infra.supervisor.restarts)
    readable = await _read_all(bootstrap, TOPIC_INTERACTIONS, len(after_kill))
    lost = [v for v in after_kill if v not in readable]
    assert lost == [], f"{len(lost)} of {len(after_kill)} sends acknowledged after the kill are gone: {lost[:10]}"
