"""Admission control (decision 0755): at most ``max_in_flight`` requests are worked on at once; up to
``queue_max`` more wait for a slot, each at most ``queue_timeout_ms``; the rest are refused at once with
``503 overloaded`` and ``Retry-After``, so past capacity the answers given stay fast instead of every request
timing out. The time a request waited is published (``queued_ms()``) so it counts against its budget."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterable

from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Receive, Scope, Send

from pickwise_common.errors import PickwiseError
from pickwise_common.telemetry import request_id_var

OVERLOADED = "overloaded"
RETRY_AFTER_S = 1

_queued_ms: contextvars.ContextVar[float] = contextvars.ContextVar("admission_queued_ms", default=0.0)

SHED = Counter("pickwise_admission_shed_total", "Requests refused by admission control", ["service", "reason"])
QUEUED = Gauge("pickwise_admission_queued", "Requests waiting for an admission slot", ["service"])
QUEUE_WAIT = Histogram("pickwise_admission_queue_wait_seconds", "Time admitted requests waited for a slot",
                       ["service"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))


def queued_ms() -> float:
    """How long the current request waited for admission (0 outside admission control)."""
    return _queued_ms.get()


class Overloaded(PickwiseError):
    status_code = 503
    code = OVERLOADED


class Admission:
    """A bounded number of slots with a bounded, time-limited queue in front of them."""

    def __init__(self, service: str, *, max_in_flight: int, queue_max: int, queue_timeout_ms: float) -> None:
        self.service = service
        self.max_in_flight = max_in_flight
        self.queue_max = queue_max
        self.queue_timeout_s = queue_timeout_ms / 1000.0
        self._slots = asyncio.Semaphore(max_in_flight)
        self.in_flight = 0
        self.waiting = 0

    async def acquire(self) -> float:
        """Take a slot; returns the seconds waited. Raises Overloaded when the queue is full or the wait
        ran past the queue timeout."""
        if not self._slots.locked() and self.waiting == 0:
            await self._slots.acquire()
            self.in_flight += 1
            return 0.0
        if self.waiting >= self.queue_max:
            SHED.labels(self.service, "queue_full").inc()
            raise Overloaded(f"{self.service} is at capacity ({self.max_in_flight} in flight, "
                             f"{self.waiting} queued); retry shortly")
        start = time.perf_counter()
        self.waiting += 1
        QUEUED.labels(self.service).set(self.waiting)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.queue_timeout_s)
        except TimeoutError:
            SHED.labels(self.service, "queue_timeout").inc()
            raise Overloaded(f"{self.service} is at capacity: no slot within "
                             f"{self.queue_timeout_s * 1000:.0f} ms; retry shortly") from None
        finally:
            self.waiting -= 1
            QUEUED.labels(self.service).set(self.waiting)
        self.in_flight += 1
        waited = time.perf_counter() - start
        QUEUE_WAIT.labels(self.service).observe(waited)
        return waited

    def release(self) -> None:
        self.in_flight -= 1
        self._slots.release()


class AdmissionMiddleware:
    """Admission control for requests whose path starts with one of ``prefixes`` (minus ``exempt``);
    health, readiness and metrics are never queued behind the work they report on."""

    def __init__(self, app: ASGIApp, *, admission: Admission, prefixes: Iterable[str] = ("/v1/",),
                 exempt: Iterable[str] = ()) -> None:
        self.app = app
        self.admission = admission
        self.prefixes = tuple(prefixes)
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(self.prefixes) or (self.exempt and path.startswith(
                self.exempt)):
            await self.app(scope, receive, send)
            return
        try:
            waited_s = await self.admission.acquire()
        except Overloaded as exc:
            body = {"error": {"code": exc.code, "message": exc.message, "fields": [],
                              "request_id": request_id_var.get()}}
            await JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})(
                scope, receive, send)
            return
        token = _queued_ms.set(waited_s * 1000.0)
        try:
            await self.app(scope, receive, send)
        finally:
            _queued_ms.reset(token)
            self.admission.release()
