"""Everything a ``/v1/`` request passes before its route (decisions 0751, 0753, 0754): the API key (by sha256
digest; 401), its scope and catalogs (403), rate limits per key id and per shopper (user id or client IP;
429 with Retry-After; requests without a valid key are limited by IP too), and text hygiene of the query
string and JSON body (NFKC, no invisible or control characters, bounded lists; 422 naming the field).

A pure ASGI middleware placed innermost (after request ids and tracing), so every public route is covered
however its router was included, and a rejected request still carries its request id. Only the key's id
reaches logs and metrics, never the key."""

from __future__ import annotations

import ipaddress
import json
import logging
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi.responses import JSONResponse
from prometheus_client import Counter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pickwise_common.api_keys import ApiKey, find_key
from pickwise_common.api_keys import Scope as KeyScope
from pickwise_common.app import error_body
from pickwise_common.catalogs import CATALOGS
from pickwise_common.errors import InvalidInput
from pickwise_common.telemetry import api_key_id_var
from pickwise_gateway import text_input
from pickwise_gateway.rate_limit import RateLimits

log = logging.getLogger("pickwise.gateway.auth")

PROTECTED_PREFIX = "/v1/"
REJECTED_ROUTE = SimpleNamespace(path="/v1/* (rejected)")
API_KEY_HEADER = b"x-api-key"
JSON_METHODS = frozenset({"POST", "PUT", "PATCH"})

KEY_REQUESTS = Counter("pickwise_gateway_api_key_requests_total", "Public API requests by API key id and outcome",
                       ["key_id", "outcome"])


def required_scope(path: str) -> KeyScope:
    if path.startswith("/v1/events"):
        return "events"
    if path.startswith("/v1/admin"):
        return "admin"
    return "read"


def client_ip(scope: Scope, headers: dict[bytes, bytes], trusted_proxies: list[str]) -> str:
    """The peer address, or the first X-Forwarded-For hop when the peer is a trusted proxy."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    forwarded = headers.get(b"x-forwarded-for")
    if forwarded and is_trusted(peer, trusted_proxies):
        first = forwarded.decode("latin-1").split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            return peer
    return peer


def is_trusted(peer: str, trusted_proxies: list[str]) -> bool:
    if "*" in trusted_proxies:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for entry in trusted_proxies:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def catalogs_named(params: list[tuple[str, str]], body: Any) -> set[str]:
    """Every catalog a request names: a ``catalog`` query parameter or body field (also per batch event)."""
    named = {v for k, v in params if k == "catalog"}
    entries: list[Any] = []
    if isinstance(body, dict):
        entries.append(body)
        if isinstance(body.get("events"), list):
            entries.extend(body["events"])
    elif isinstance(body, list):
        entries.extend(body)
    named.update(e["catalog"] for e in entries if isinstance(e, dict) and isinstance(e.get("catalog"), str))
    return named


def shopper(path: str, params: list[tuple[str, str]], body: Any, ip: str) -> str:
    """Who a request is for: its user id when it names one, else the client IP."""
    user_id = next((v for k, v in params if k == "user_id" and v), None)
    if user_id is None and isinstance(body, dict) and isinstance(body.get("user_id"), str):
        user_id = body["user_id"]
    if user_id is None and path.startswith("/v1/users/"):
        user_id = path.split("/")[3] or None
    return f"user:{user_id}" if user_id else f"ip:{ip}"


class Rejection(Exception):
    def __init__(self, status: int, code: str, message: str, *, fields: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields
        self.headers = headers or {}


class PublicApiMiddleware:
    def __init__(self, app: ASGIApp, *, api_keys: list[ApiKey], limits: RateLimits,
                 trusted_proxies: list[str]) -> None:
        self.app = app
        self.api_keys = api_keys
        self.limits = limits
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        token = api_key_id_var.set(None)
        try:
            try:
                receive = await self._admit(scope, receive)
            except Rejection as rejection:
                await self._reject(scope, receive, send, rejection)
                return
            await self.app(scope, receive, send)
        finally:
            api_key_id_var.reset(token)

    async def _admit(self, scope: Scope, receive: Receive) -> Receive:
        headers = dict(scope.get("headers", []))
        ip = client_ip(scope, headers, self.trusted_proxies)
        key = await self._authenticate(headers.get(API_KEY_HEADER), ip)
        state = scope.setdefault("state", {})
        state["api_key_id"] = key.id
        state["api_key_catalogs"] = key.catalogs  # the routes resolve the default catalog from it (tenancy.py)
        api_key_id_var.set(key.id)  # every log line of this request names the key's id
        scope_needed = required_scope(scope["path"])
        if not key.has_scope(scope_needed):
            KEY_REQUESTS.labels(key.id, "forbidden").inc()
            raise Rejection(403, "forbidden", f"API key {key.id!r} lacks the {scope_needed!r} scope")

        params, body, receive = await self._clean_input(scope, headers, receive)
        # an unknown name is the route's 404 (naming `catalog`); a known catalog outside the key's scope stops here
        denied = sorted(c for c in catalogs_named(params, body) if c in CATALOGS and not key.allows_catalog(c))
        if denied:
            KEY_REQUESTS.labels(key.id, "forbidden").inc()
            raise Rejection(403, "forbidden", f"API key {key.id!r} may not use catalog {denied[0]!r}",
                            fields=[{"field": "catalog", "message": f"catalog {denied[0]!r} is not allowed for "
                                                                    "this API key"}])

        limits = self.limits.key_limits(key.id) + self.limits.client_limits(shopper(scope["path"], params, body, ip))
        wait_s = await self.limits.check(limits)
        if wait_s > 0:
            KEY_REQUESTS.labels(key.id, "rate_limited").inc()
            retry_after = RateLimits.retry_after_s(wait_s)
            raise Rejection(429, "rate_limited", f"rate limit exceeded; retry in {retry_after} s",
                            headers={"Retry-After": str(retry_after)})
        KEY_REQUESTS.labels(key.id, "ok").inc()
        return receive

    async def _authenticate(self, provided: bytes | None, ip: str) -> ApiKey:
        key = find_key(provided.decode("latin-1"), self.api_keys) if provided else None
        if key is not None:
            return key
        KEY_REQUESTS.labels("unknown" if provided else "none", "unauthorized").inc()
        wait_s = await self.limits.check(self.limits.unauthenticated_limits(ip))
        if wait_s > 0:
            retry_after = RateLimits.retry_after_s(wait_s)
            raise Rejection(429, "rate_limited", f"too many requests without a valid API key; retry in "
                                                 f"{retry_after} s", headers={"Retry-After": str(retry_after)})
        raise Rejection(401, "unauthorized", "invalid API key" if provided else "missing X-API-Key header",
                        headers={"WWW-Authenticate": "ApiKey"})

    async def _clean_input(self, scope: Scope, headers: dict[bytes, bytes],
                           receive: Receive) -> tuple[list[tuple[str, str]], Any, Receive]:
        """Cleaned query parameters and JSON body, and a ``receive`` that replays the (cleaned) body."""
        try:
            text_input.clean_text(scope["path"], "path")
            raw_query = scope.get("query_string", b"").decode("latin-1")
            params = parse_qsl(raw_query, keep_blank_values=True)
            cleaned = [(k, text_input.clean_text(v, f"query.{k}")) for k, v in params]
            if cleaned != params:
                scope["query_string"] = urlencode(cleaned).encode("latin-1")
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if scope["method"] not in JSON_METHODS or "json" not in content_type:
                return cleaned, None, receive
            raw = await _read_body(receive)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return cleaned, None, _replay(raw, receive)  # the route answers 422 for malformed JSON
            clean_body = text_input.clean_json(body)
        except InvalidInput as exc:
            raise Rejection(422, exc.code, exc.message, fields=exc.fields) from exc
        if clean_body != body:
            raw = json.dumps(clean_body, ensure_ascii=False).encode("utf-8")
        return cleaned, clean_body, _replay(raw, receive)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, rejection: Rejection) -> None:
        # label the request metric by a constant, not the raw path (unauthenticated paths are unbounded)
        scope["route"] = REJECTED_ROUTE
        if rejection.status in (403, 429):
            log.info("rejected %s %s: %s", scope["method"], scope["path"], rejection.message)
        await JSONResponse(error_body(rejection.code, rejection.message, rejection.fields),
                           status_code=rejection.status, headers=rejection.headers)(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            message = await receive()
        except HTTPException as exc:  # the body-size limit of RequestContextMiddleware
            raise Rejection(exc.status_code, "payload_too_large", str(exc.detail)) from exc
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
