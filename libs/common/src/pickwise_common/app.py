"""The service app factory: health, readiness, metrics, JSON errors, request ids, tracing, auth helpers.

A service's ``create_app`` is wiring only::

    app = service_app("retriever", settings, lifespan=lifespan)
    app.include_router(api.router)
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pickwise_common.admission import Admission, AdmissionMiddleware
from pickwise_common.api_docs import install_docs
from pickwise_common.api_keys import ApiKey, find_key
from pickwise_common.errors import Forbidden, PickwiseError, Unauthorized
from pickwise_common.metrics import (
    DEPENDENCY_UP,
    HTTP_IN_FLIGHT,
    HTTP_LATENCY,
    HTTP_REQUESTS,
    SERVICE_INFO,
    metrics_exposition,
)
from pickwise_common.settings import ServiceSettings
from pickwise_common.telemetry import (
    current_trace_id,
    request_id_var,
    setup_logging,
    setup_tracing,
    shutdown_tracing,
)

log = logging.getLogger("pickwise.app")

Check = Callable[[], Awaitable[Any]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass
class Dependency:
    """A readiness check. A required dependency failing makes /readyz 503; an optional one only
    marks the service ``degraded``."""

    name: str
    check: Check
    required: bool = True


def failure_reason(exc: BaseException) -> str:
    """A short code for a failed readiness check: ``timeout``, ``unreachable`` or ``error``."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) or "connect" in type(exc).__name__.lower():
        return "unreachable"
    return "error"


class Readiness:
    def __init__(self, service: str, timeout_ms: int) -> None:
        self.service = service
        self.timeout_s = timeout_ms / 1000.0
        self.dependencies: dict[str, Dependency] = {}

    def add(self, name: str, check: Check, *, required: bool = True) -> None:
        self.dependencies[name] = Dependency(name, check, required)

    async def _run(self, dep: Dependency) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            detail = await asyncio.wait_for(dep.check(), self.timeout_s)
        except Exception as exc:  # a failing dependency is the answer, not an error of ours
            DEPENDENCY_UP.labels(self.service, dep.name).set(0)
            # the exception text names internal hosts and ports: it goes to the log, the answer gets a code
            log.warning("readiness check %s failed: %s: %s", dep.name, type(exc).__name__, exc)
            return {"ok": False, "required": dep.required, "reason": failure_reason(exc),
                    "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
        DEPENDENCY_UP.labels(self.service, dep.name).set(1)
        result: dict[str, Any] = {"ok": True, "required": dep.required,
                                  "latency_ms": round((time.perf_counter() - start) * 1000, 2)}
        if isinstance(detail, dict):
            result.update(detail)
        elif detail is not None:
            result["detail"] = detail
        return result

    async def report(self) -> tuple[int, dict[str, Any]]:
        deps = list(self.dependencies.values())
        results = await asyncio.gather(*(self._run(d) for d in deps))
        checks = {d.name: r for d, r in zip(deps, results, strict=True)}
        required_ok = all(r["ok"] for r in checks.values() if r["required"])
        all_ok = all(r["ok"] for r in checks.values())
        status = "ready" if all_ok else ("degraded" if required_ok else "not_ready")
        return (200 if required_ok else 503), {"status": status, "service": self.service, "checks": checks}


def error_body(code: str, message: str, fields: list[dict[str, Any]] | None = None,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {**(details or {}), "code": code, "message": message, "fields": fields or [],
                      "request_id": request_id_var.get()}}


def _validation_fields(exc: RequestValidationError) -> list[dict[str, Any]]:
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        fields.append({"field": ".".join(loc), "message": err.get("msg", ""), "type": err.get("type", "")})
    return fields


BODY_PARSE_ERROR = "There was an error parsing the body"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PickwiseError)
    async def _pickwise_error(request: Request, exc: PickwiseError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("request failed: %s", exc.message)
        return JSONResponse(error_body(exc.code, exc.message, exc.fields, exc.details),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _validation_fields(exc)
        names = ", ".join(f["field"] for f in fields) or "request"
        first = fields[0]["message"] if fields else "invalid request"
        return JSONResponse(error_body("invalid_input", f"invalid {names}: {first}", fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:
            # FastAPI's answer to a body that is not UTF-8 (found by the schemathesis suite): an invalid input
            # like any other, a 422 naming the body, which every operation with a body documents
            fields = [{"field": "body", "message": "not UTF-8 encoded JSON", "type": "json_invalid"}]
            return JSONResponse(error_body("invalid_input", "invalid body: not UTF-8 encoded JSON", fields),
                                status_code=422)
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                413: "payload_too_large"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))


REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:/=+-]{1,128}")


def valid_request_id(value: str | None) -> str | None:
    """A client's X-Request-ID when it is short and plain (it reaches logs and headers); None otherwise,
    and the request gets a fresh id."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return None


class RequestContextMiddleware:
    """Request ids, body-size limit, RED metrics by route template and status. Pure ASGI (no
    BaseHTTPMiddleware) so streaming responses and cancellation behave."""

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = valid_request_id(headers.get("x-request-id")) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        method = scope["method"]
        status: dict[str, Any] = {"code": 500, "started": False}
        start = time.perf_counter()

        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._reject_too_large(scope, receive, send, request_id)
            request_id_var.reset(token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # an HTTPException passes through FastAPI's body parsing untouched
                    raise HTTPException(413, f"request body exceeds {self.max_body_bytes} bytes")
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                extra = [(b"x-request-id", request_id.encode("latin-1"))]
                trace_id = current_trace_id()
                if trace_id:
                    extra.append((b"x-trace-id", trace_id.encode()))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        route = scope["path"]
        in_flight = HTTP_IN_FLIGHT.labels(self.service, "all")
        in_flight.inc()
        try:
            await self.app(scope, limited_receive, send_wrapper)
        except Exception:
            # a bug of ours: answer a JSON 500 carrying the request id (if nothing was sent yet), log it
            log.exception("unhandled error on %s %s", method, scope["path"])
            if status["code"] == 500 and not status.get("started"):
                await JSONResponse(error_body("internal_error", "internal error"), status_code=500)(
                    scope, receive, send_wrapper)
        finally:
            in_flight.dec()
            route_obj = scope.get("route")
            route = getattr(route_obj, "path", None) or ("unmatched" if status["code"] == 404 else route)
            HTTP_REQUESTS.labels(self.service, route, method, str(status["code"])).inc()
            HTTP_LATENCY.labels(self.service, route, method).observe(time.perf_counter() - start)
            request_id_var.reset(token)

    async def _reject_too_large(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        response = JSONResponse(error_body("payload_too_large",
                                           f"request body exceeds {self.max_body_bytes} bytes"),
                                status_code=413, headers={"x-request-id": request_id})
        HTTP_REQUESTS.labels(self.service, "unmatched", scope["method"], "413").inc()
        await response(scope, receive, send)


def package_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "0.0.0"


# set by ``pickwise_common.serve`` (a served process runs one app; its environment variable reaches the worker
# processes it spawns); tests that start many apps in one process leave it off, so they neither pay a full
# collection per app nor keep each app's start-up heap frozen
FREEZE_HEAP_ENV = "PICKWISE_FREEZE_HEAP_AFTER_STARTUP"
FREEZE_HEAP_AFTER_STARTUP = os.environ.get(FREEZE_HEAP_ENV) == "1"


def _after_startup() -> None:
    if FREEZE_HEAP_AFTER_STARTUP:
        log.info("start-up heap frozen: %d objects out of the collector's generations", freeze_startup_heap())


def freeze_startup_heap() -> int:
    """Collect once, then move everything alive after start-up (modules, schemas, a loaded catalog or model) into
    the collector's permanent generation: a full collection under load then walks only what requests create,
    instead of stalling the event loop over the whole start-up heap. Objects stay freed by reference counting.
    Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def service_app(name: str, settings: ServiceSettings, *, lifespan: Lifespan | None = None,
                title: str | None = None, description: str = "", version_: str | None = None,
                admission_exempt: tuple[str, ...] = ()) -> FastAPI:
    """Build the FastAPI app every Pickwise service starts from. ``admission_exempt``: path prefixes under
    /v1/ that admission control lets through (cheap endpoints with their own back-pressure)."""
    setup_logging(settings)
    setup_tracing(settings)
    ver = version_ or package_version(f"pickwise-{name}")
    SERVICE_INFO.labels(name, ver).set(1)

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting %s on %s:%s", name, settings.host, settings.port)
        try:
            if lifespan is None:
                _after_startup()
                yield
            else:
                async with lifespan(app):
                    _after_startup()
                    yield
        finally:
            shutdown_tracing()
            log.info("stopped %s", name)

    app = FastAPI(title=title or f"Pickwise {name}", description=description, version=ver, lifespan=_lifespan,
                  docs_url=None, redoc_url=None)  # served offline by install_docs below
    app.state.settings = settings
    app.state.service_name = name
    app.state.readiness = Readiness(name, settings.readiness_timeout_ms)
    _install_error_handlers(app)
    install_docs(app)

    @app.get("/healthz", tags=["ops"], summary="Process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    @app.get("/readyz", tags=["ops"], summary="Dependencies are reachable (per-dependency detail)",
             responses={200: {"description": "every required dependency answered (optional ones may be down)"},
                        503: {"description": "a required dependency is unreachable; the same JSON detail says "
                                            "which"}})
    async def readyz(request: Request) -> JSONResponse:
        status_code, body = await request.app.state.readiness.report()
        return JSONResponse(body, status_code=status_code)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(metrics_exposition(), media_type=CONTENT_TYPE_LATEST)

    if settings.admission_max_in_flight > 0:
        # inside RequestContextMiddleware: a shed request still has its request id and is counted
        app.add_middleware(AdmissionMiddleware, admission=Admission(
            name, max_in_flight=settings.admission_max_in_flight, queue_max=settings.admission_queue_max,
            queue_timeout_ms=settings.admission_queue_timeout_ms), exempt=admission_exempt)
    app.add_middleware(RequestContextMiddleware, service=name, max_body_bytes=settings.max_body_bytes)
    # one server span per request; no extra span per ASGI receive/send message (4 for a small POST, each a recorded
    # SDK span: CPU on every hop, nothing a trace reader uses; decision 0904)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"])
    return app


def check_key(provided: str | None, accepted: list[str]) -> bool:
    """Constant-time comparison against every accepted key."""
    if not provided:
        return False
    return any(hmac.compare_digest(provided.encode(), key.encode()) for key in accepted)


def require_api_key(settings: ServiceSettings, provided: str | None) -> ApiKey:
    """The record of the caller's key (401 when missing or unknown)."""
    if not provided:
        raise Unauthorized("missing X-API-Key header")
    key = find_key(provided, settings.api_keys)
    if key is None:
        raise Unauthorized("invalid API key")
    return key


def require_admin_key(settings: ServiceSettings, provided: str | None) -> None:
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    if not admin:
        raise Forbidden("admin endpoints are disabled: PICKWISE_ADMIN_KEY is not set")
    if not check_key(provided, [admin]):
        raise Unauthorized("missing or invalid admin key")
