"""The internal HTTP client: retries, breaker, error mapping, header propagation (fake transport)."""

import asyncio

import httpx
import pytest
from opentelemetry import trace

from pickwise_common.breaker import BreakerState, CircuitBreaker, RetryPolicy
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


async def test_half_open_trial_cancelled_by_wait_for_does_not_block_the_downstream() -> None:
    clock = [1000.0]
    slow = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            await slow.wait()
        return httpx.Response(200, json={})

    breaker = CircuitBreaker(name="svc", min_calls=1, window=1, open_s=10.0, clock=lambda: clock[0])
    client = client_with(handler, retry=RetryPolicy(max_attempts=1), breaker=breaker)
    breaker.record_failure()
    clock[0] += 10  # half-open: the next call is the trial
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.get_json("/slow"), 0.01)
    clock[0] += 10  # one more open period after the cancelled trial
    assert await client.get_json("/fast") == {}
    assert breaker.state is BreakerState.CLOSED


async def test_downstream_4xx_never_opens_the_breaker_nor_is_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(422, json={"error": {"code": "invalid_input", "message": "bad colour"}})

    breaker = CircuitBreaker(name="svc", min_calls=10, window=20)
    client = client_with(handler, breaker=breaker)
    for _ in range(20):
        with pytest.raises(DownstreamError):
            await client.post_json("/retrieve", {}, idempotent=True)
    assert breaker.state is BreakerState.CLOSED
    assert len(calls) == 20, "a 4xx is an answer, never retried"


async def test_calls_past_the_in_flight_bound_wait_within_their_budget_then_give_up() -> None:
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={})

    client = client_with(handler, retry=RetryPolicy(max_attempts=1), max_in_flight=1)
    held = asyncio.create_task(client.get_json("/slow", timeout_ms=60_000))
    await asyncio.sleep(0.01)
    with pytest.raises(DependencyUnavailable, match="saturated"):
        await client.get_json("/x", timeout_ms=20)
    release.set()
    assert await held == {}
    assert client.breaker.state is BreakerState.CLOSED
