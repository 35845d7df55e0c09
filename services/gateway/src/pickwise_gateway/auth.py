"""API-key authentication and per-key rate limiting for everything under ``/v1/``.

A pure ASGI middleware placed innermost (after request ids and tracing), so every public route is
covered however its router was included, and a rejected request still carries its request id."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pickwise_common.app import check_key, error_body
from pickwise_gateway.rate_limit import TokenBucketLimiter

PROTECTED_PREFIX = "/v1/"
REJECTED_ROUTE = SimpleNamespace(path="/v1/* (rejected)")
API_KEY_HEADER = "x-api-key"


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, *, api_keys: list[str], limiter: TokenBucketLimiter) -> None:
        self.app = app
        self.api_keys = api_keys
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        provided = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                         if k.decode("latin-1").lower() == API_KEY_HEADER), None)
        if not provided:
            await self._reject(scope, receive, send, 401, "unauthorized", "missing X-API-Key header")
            return
        if not check_key(provided, self.api_keys):
            await self._reject(scope, receive, send, 401, "unauthorized", "invalid API key")
            return
        wait_s = self.limiter.acquire(provided)
        if wait_s > 0:
            retry_after = self.limiter.retry_after_s(wait_s)
            await self._reject(scope, receive, send, 429, "rate_limited",
                               f"rate limit exceeded for this API key; retry in {retry_after} s",
                               headers={"Retry-After": str(retry_after)})
            return
        await self.app(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str,
                      headers: dict[str, str] | None = None) -> None:
        # label the request metric by a constant, not the raw path (unauthenticated paths are unbounded)
        scope["route"] = REJECTED_ROUTE
        headers = dict(headers or {})
        if status == 401:
            headers["WWW-Authenticate"] = "ApiKey"
        await JSONResponse(error_body(code, message), status_code=status, headers=headers)(scope, receive, send)
