"""Message encoding, poison detection and trace context in headers (no broker)."""

import pytest
from opentelemetry import trace

from pickwise_common.errors import InvalidMessage
from pickwise_common.kafka import context_from_headers, decode_message, encode_message, trace_headers
from pickwise_common.settings import ServiceSettings
from pickwise_common.telemetry import setup_tracing

pytestmark = pytest.mark.unit


def test_encode_stamps_schema_version_and_round_trips() -> None:
    raw = encode_message({"event_id": "e1", "type": "click"})
    assert decode_message(raw) == {"schema_version": 1, "event_id": "e1", "type": "click"}


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"schema_version": 99}', "unsupported schema_version"),
    (b'{"type": "click"}', "unsupported schema_version"),
    (b"\xff\xfe", "not JSON"),
    (None, "empty"),
])
def test_poison_messages_are_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        decode_message(raw)


def test_trace_context_survives_the_headers() -> None:
    setup_tracing(ServiceSettings(service_name="test"))
    with trace.get_tracer("t").start_as_current_span("produce") as span:
        headers = trace_headers({"x-attempt": "1"})
        sent = span.get_span_context()
    names = [k for k, _ in headers]
    assert "traceparent" in names and "x-attempt" in names
    received = trace.get_current_span(context_from_headers(headers)).get_span_context()
    assert received.trace_id == sent.trace_id
    assert received.span_id == sent.span_id
