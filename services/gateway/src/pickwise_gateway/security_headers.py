"""Security headers on every gateway response (decision 0754): a CSP the page satisfies (no inline script or
style), one for the API docs that allows inline styles (Swagger UI and ReDoc write style elements and
attributes at run time; their scripts are files, see api_docs) and blob: workers, frame denial,
nosniff, a referrer policy, and HSTS only when the request came over TLS (directly, or as a trusted proxy's
``X-Forwarded-Proto: https`` says)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pickwise_gateway.auth import is_trusted

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'")
DOCS_PREFIXES = ("/docs", "/redoc")
HSTS = "max-age=31536000; includeSubDomains"
COMMON = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
          (b"referrer-policy", b"same-origin"), (b"cross-origin-opener-policy", b"same-origin")]


def over_tls(scope: Scope, trusted_proxies: list[str]) -> bool:
    if scope.get("scheme") == "https":
        return True
    peer = (scope.get("client") or ("", 0))[0]
    if not is_trusted(peer, trusted_proxies):
        return False
    proto = dict(scope.get("headers", [])).get(b"x-forwarded-proto", b"")
    return proto.decode("latin-1").split(",")[0].strip().lower() == "https"


def security_headers(scope: Scope, trusted_proxies: list[str]) -> list[tuple[bytes, bytes]]:
    csp = DOCS_CSP if scope.get("path", "").startswith(DOCS_PREFIXES) else PAGE_CSP
    headers = [(b"content-security-policy", csp.encode()), *COMMON]
    if over_tls(scope, trusted_proxies):
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, trusted_proxies: list[str]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope, self.trusted_proxies)
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)
