"""Internal HTTP client: one pooled httpx.AsyncClient per downstream, per-call timeout, retries for
idempotent calls, a circuit breaker, and trace-context + request-id propagation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from pickwise_common.admission import OVERLOADED
from pickwise_common.breaker import BreakerState, CircuitBreaker, RetryPolicy
from pickwise_common.errors import CircuitOpen, DependencyUnavailable, NotFound, PickwiseError
from pickwise_common.metrics import BREAKER_STATE, DOWNSTREAM_LATENCY, DOWNSTREAM_RETRIES, DOWNSTREAM_SATURATED
from pickwise_common.telemetry import request_id_var


class DownstreamError(PickwiseError):
    """A downstream answered with a 4xx we pass on (other than 404)."""

    def __init__(self, message: str, *, status_code: int, body: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class ServiceClient:
    """Calls one internal service. Raises DependencyUnavailable (incl. CircuitOpen) when the target
    cannot answer, NotFound for 404, DownstreamError for other 4xx."""

    def __init__(self, *, caller: str, target: str, base_url: str, timeout_ms: int = 2000,
                 retry: RetryPolicy | None = None, breaker: CircuitBreaker | None = None,
                 max_connections: int = 100, max_in_flight: int | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.caller = caller
        self.target = target
        self.timeout_ms = timeout_ms
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(name=target)
        self.breaker.on_state_change = self._publish_state
        # bounded in-flight calls to this downstream: a call waits for a slot within its own budget
        self._slots = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self._publish_state(target, BreakerState.CLOSED)
        self._client = httpx.AsyncClient(
            base_url=base_url, transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            timeout=timeout_ms / 1000.0)
        HTTPXClientInstrumentor.instrument_client(self._client)

    def _publish_state(self, target: str, state: BreakerState) -> None:
        BREAKER_STATE.labels(self.caller, target).set(int(state))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                      headers: dict[str, str] | None = None, timeout_ms: float | None = None,
                      idempotent: bool | None = None, content: bytes | None = None) -> httpx.Response:
        """One logical call: attempts are retried only when idempotent, all within ``timeout_ms``.

        ``content`` sends a body that is already JSON (e.g. ``model.model_dump_json()``, much cheaper than
        ``json=`` for large payloads); it is sent with ``Content-Type: application/json``."""
        budget_s = (timeout_ms if timeout_ms is not None else self.timeout_ms) / 1000.0
        deadline = time.monotonic() + budget_s
        if self._slots is None:
            return await self._request(method, path, deadline, json=json, params=params, headers=headers,
                                       idempotent=idempotent, content=content)
        try:
            await asyncio.wait_for(self._slots.acquire(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            DOWNSTREAM_SATURATED.labels(self.caller, self.target).inc()
            raise DependencyUnavailable(f"{self.target} saturated: no free call slot within the budget",
                                        dependency=self.target) from None
        try:
            return await self._request(method, path, deadline, json=json, params=params, headers=headers,
                                       idempotent=idempotent, content=content)
        finally:
            self._slots.release()

    async def _request(self, method: str, path: str, deadline: float, *, json: Any, params: dict[str, Any] | None,
                       headers: dict[str, str] | None, idempotent: bool | None,
                       content: bytes | None) -> httpx.Response:
        send_headers = dict(headers or {})
        if content is not None:
            send_headers.setdefault("Content-Type", "application/json")
        request_id = request_id_var.get()
        if request_id:
            send_headers.setdefault("X-Request-ID", request_id)
        may_retry = self.retry.may_retry(method, idempotent=idempotent)
        delays = self.retry.delays_s() if may_retry else iter(())
        last_error: str = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not self.breaker.allow():
                raise CircuitOpen(f"{self.target} circuit is open", dependency=self.target)
            start = time.perf_counter()
            try:
                response = await self._client.request(method, path, json=json, content=content, params=params,
                                                      headers=send_headers, timeout=remaining)
            except asyncio.CancelledError:
                # the caller's wait_for gave up on this attempt: a half-open trial must not hold its slot
                self.breaker.record_cancelled()
                raise
            except (TimeoutError, httpx.TransportError) as exc:
                self.breaker.record_failure()
                DOWNSTREAM_LATENCY.labels(self.caller, self.target, "error").observe(time.perf_counter() - start)
                last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                elapsed = time.perf_counter() - start
                if _overloaded(response):
                    # shed fast by the downstream's admission control: it is alive and answering, so no
                    # breaker failure, and no retry that would add to its load
                    self.breaker.record_success()
                    DOWNSTREAM_LATENCY.labels(self.caller, self.target, "overloaded").observe(elapsed)
                    raise DependencyUnavailable(f"{self.target} overloaded (fast 503)", dependency=self.target)
                if response.status_code >= 500:
                    self.breaker.record_failure()
                    DOWNSTREAM_LATENCY.labels(self.caller, self.target, "error").observe(elapsed)
                    last_error = f"HTTP {response.status_code}"
                    if not self.retry.retryable_status(response.status_code):
                        break
                else:
                    self.breaker.record_success()
                    DOWNSTREAM_LATENCY.labels(self.caller, self.target, "ok").observe(elapsed)
                    return self._check(response)
            delay = next(delays, None)
            if delay is None or time.monotonic() + delay >= deadline:
                break
            DOWNSTREAM_RETRIES.labels(self.caller, self.target).inc()
            await asyncio.sleep(delay)
        raise DependencyUnavailable(f"{self.target} unavailable ({last_error or 'time budget spent'})",
                                    dependency=self.target)

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code == 404:
            raise NotFound(_error_message(response))
        if response.status_code >= 400:
            raise DownstreamError(_error_message(response), status_code=response.status_code,
                                  body=_json_or_text(response))
        return response

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return self._decode(await self.request("GET", path, **kwargs))

    async def post_json(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self._decode(await self.request("POST", path, content=orjson.dumps(body), **kwargs))

    def _decode(self, response: httpx.Response) -> Any:
        """The body as JSON; a body that is not JSON is the downstream's fault (a dependency error), so callers
        never need to catch ``ValueError`` — which would also swallow their own bugs."""
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise DependencyUnavailable(f"{self.target} answered a body that is not JSON",
                                        dependency=self.target) from exc


def _overloaded(response: httpx.Response) -> bool:
    if response.status_code != 503:
        return False
    body = _json_or_text(response)
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("code") == OVERLOADED


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _error_message(response: httpx.Response) -> str:
    body = _json_or_text(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", body))
    return str(body)[:300]
