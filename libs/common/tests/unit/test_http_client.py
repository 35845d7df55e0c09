"""The internal HTTP client: retries, breaker, error mapping, header propagation (fake transport)."""

import httpx
import pytest
from opentelemetry import trace

from pickwise_common.breaker import CircuitBreaker, RetryPolicy
from pickwise_common.errors import CircuitOpen, DependencyUnavailable, NotFound
from pickwise_common.http import DownstreamError, ServiceClient
from pickwise_common.settings import ServiceSettings
from pickwise_common.telemetry import request_id_var, setup_tracing

pytestmark = pytest.mark.unit


def client_with(handler, **kwargs) -> ServiceClient:
    return ServiceClient(caller="test", target="svc", base_url="http://svc", transport=httpx.MockTransport(handler),
                         retry=kwargs.pop("retry", RetryPolicy(max_attempts=3, base_delay_ms=1, max_delay_ms=2)),
                         **kwargs)


async def test_get_is_retried_after_503_and_succeeds() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503) if len(calls) < 3 else httpx.Response(200, json={"ok": True})

    client = client_with(handler)
    assert await client.get_json("/x") == {"ok": True}
    assert len(calls) == 3


async def test_post_is_not_retried_unless_declared_idempotent() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    client = client_with(handler)
    with pytest.raises(DependencyUnavailable):
        await client.post_json("/x", {})
    assert len(calls) == 1
    with pytest.raises(DependencyUnavailable):
        await client.post_json("/x", {}, idempotent=True)
    assert len(calls) == 4


async def test_connection_errors_become_dependency_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(DependencyUnavailable) as info:
        await client_with(handler).get_json("/x")
    assert info.value.dependency == "svc"


async def test_open_breaker_fails_fast_without_calling() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    client = client_with(handler, retry=RetryPolicy(max_attempts=1),
                         breaker=CircuitBreaker(name="svc", min_calls=10, window=20))
    for _ in range(10):
        with pytest.raises(DependencyUnavailable):
            await client.get_json("/x")
    with pytest.raises(CircuitOpen):
        await client.get_json("/x")
    assert len(calls) == 10


async def test_404_maps_to_not_found_and_4xx_to_downstream_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/missing":
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "item 'x' is unknown"}})
        return httpx.Response(422, json={"error": {"code": "invalid_input", "message": "bad query"}})

    client = client_with(handler)
    with pytest.raises(NotFound, match="item 'x' is unknown"):
        await client.get_json("/missing")
    with pytest.raises(DownstreamError) as info:
        await client.post_json("/bad", {})
    assert info.value.status_code == 422


async def test_request_id_and_trace_context_are_propagated() -> None:
    setup_tracing(ServiceSettings(service_name="test"))
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        return httpx.Response(200, json={})

    client = client_with(handler)
    token = request_id_var.set("req-123")
    try:
        with trace.get_tracer("t").start_as_current_span("parent") as span:
            await client.get_json("/x")
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        request_id_var.reset(token)
    assert seen["x-request-id"] == "req-123"
    assert seen["traceparent"].split("-")[1] == trace_id
