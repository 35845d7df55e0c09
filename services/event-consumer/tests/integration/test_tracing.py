"""The consumer's span continues the producer's trace (W3C ``traceparent`` in the Kafka headers), with the
Postgres insert and the Redis script as child spans."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pickwise_common.schemas import InteractionEvent

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


async def test_consumer_span_continues_the_request_trace(consumer_env, eventually) -> None:
    env = consumer_env
    event = InteractionEvent(event_id=uuid.uuid4(), type="click", ts=datetime.now(UTC), user_id="trace-u",
                             item_id="trace-i")
    async with env.running():
        exporter = InMemorySpanExporter()
        trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
        await env.producer.send(env.topics.interactions, event.model_dump(mode="json"), key=event.user_id,
                                headers=[("traceparent", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01".encode())])

        async def consumed() -> bool:
            return any(s.name == f"consume {env.topics.interactions}" for s in exporter.get_finished_spans())
        await eventually(consumed, "the consumer span was recorded")

    spans = [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == TRACE_ID]
    consume = next(s for s in spans if s.name == f"consume {env.topics.interactions}")
    assert format(consume.parent.span_id, "016x") == PARENT_SPAN_ID
    children = {s.name for s in spans if s.parent is not None and s.parent.span_id == consume.context.span_id}
    assert {"postgres.insert events", "redis.apply_features"} <= children
    assert consume.attributes["pickwise.outcome"] == "applied"
