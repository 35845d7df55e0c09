"""Kafka helpers against the real (embedded) broker: acks=all produce, trace context in headers,
manual commit, and a restarted consumer in the same group not re-reading committed messages."""

import asyncio
import uuid

import pytest
from opentelemetry import trace

from pickwise_common.kafka import (
    JsonProducer,
    context_from_headers,
    create_consumer,
    decode_message,
    ensure_topics,
)
from pickwise_common.settings import KafkaSettings, ServiceSettings
from pickwise_common.telemetry import setup_tracing

pytestmark = pytest.mark.integration


async def consume(settings: KafkaSettings, topic: str, group: str, count: int, *, commit: bool,
                  timeout_s: float = 60.0, linger_s: float = 0.0) -> list:
    consumer = create_consumer(settings, [topic], group_id=group)
    await consumer.start()
    got = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(got) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(records)
        # keep reading a little longer: anything re-read would show up here
        end = asyncio.get_running_loop().time() + linger_s
        while asyncio.get_running_loop().time() < end:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(records)
        if commit:
            await consumer.commit()
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return got


async def test_message_round_trips_with_trace_context_and_commit(infra) -> None:
    setup_tracing(ServiceSettings(service_name="test"))
    settings = KafkaSettings(kafka_bootstrap=infra.config.kafka_bootstrap)
    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic], partitions=1)
    producer = JsonProducer(settings, service="test")
    with trace.get_tracer("t").start_as_current_span("request") as span:
        sent_trace = span.get_span_context().trace_id
        for i in range(5):
            metadata = await producer.send(topic, {"n": i}, key="user-1")
            assert metadata.offset == i
    await producer.stop()

    group = f"g-{uuid.uuid4().hex[:8]}"
    first = await consume(settings, topic, group, 5, commit=True)
    assert [decode_message(r.value)["n"] for r in first] == [0, 1, 2, 3, 4]
    assert all(decode_message(r.value)["schema_version"] == 1 for r in first)
    received = trace.get_current_span(context_from_headers(first[0].headers)).get_span_context()
    assert received.trace_id == sent_trace

    # a restarted consumer in the same group starts after the committed offset: the first and only
    # message it sees is the one produced after the commit
    producer = JsonProducer(settings, service="test")
    await producer.send(topic, {"n": 5}, key="user-1")
    await producer.stop()
    after = await consume(settings, topic, group, 1, commit=True, linger_s=1.5)
    assert [decode_message(r.value)["n"] for r in after] == [5]


async def test_send_to_unreachable_broker_raises_dependency_unavailable() -> None:
    from pickwise_common.errors import DependencyUnavailable
    from pickwise_common.launcher.processes import free_port

    settings = KafkaSettings(kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_request_timeout_ms=500)
    producer = JsonProducer(settings, service="test")
    with pytest.raises(DependencyUnavailable):
        await producer.send("events.interactions", {"n": 1})
    await producer.stop()


async def test_ensure_topics_is_idempotent(infra) -> None:
    settings = KafkaSettings(kafka_bootstrap=infra.config.kafka_bootstrap)
    name = f"test.topics.{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(settings, [name]) == [name]
    assert await ensure_topics(settings, [name]) == []
