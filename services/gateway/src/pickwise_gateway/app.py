"""gateway service: wiring only (routes in api.py, orchestration in recommendation.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.middleware import Middleware

from pickwise_common import resources
from pickwise_common.app import service_app
from pickwise_common.kafka import ALL_TOPICS
from pickwise_gateway import api, events_api, users_api, web
from pickwise_gateway.auth import PublicApiMiddleware
from pickwise_gateway.cf_availability import CfCatalogs
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.impressions import ImpressionLog
from pickwise_gateway.known_items import KnownItems
from pickwise_gateway.rate_limit import RateLimits
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.security_headers import SecurityHeadersMiddleware
from pickwise_gateway.session_events import SessionEventPublisher


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: GatewaySettings = app.state.settings
    async with AsyncExitStack() as stack:
        producer = await stack.enter_async_context(
            resources.kafka_producer(app, settings, service="gateway", required=False, repair_topics=ALL_TOPICS))
        clients = await stack.enter_async_context(resources.service_clients(
            app, settings, caller="gateway", targets=("retriever", "reranker", "generator", "session")))
        # Redis only serves the popularity fallback: optional for readiness
        redis = await stack.enter_async_context(resources.redis_client(app, settings, required=False))
        if settings.rate_limit_redis:
            app.state.rate_limits.use_redis(redis.connection_pool)
        app.state.recommender = Recommender(settings, clients, redis)
        app.state.known_items = KnownItems(redis)
        publisher = app.state.session_events = SessionEventPublisher(producer)
        stack.push_async_callback(publisher.drain)
        app.state.impressions.start(producer)
        stack.push_async_callback(app.state.impressions.stop, settings.impression_drain_s)
        yield


def _openapi_with_api_key(app: FastAPI) -> dict[str, Any]:
    """Declare the X-API-Key scheme on every /v1 operation (the check itself is PublicApiMiddleware)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for operation in operations.values():
                    operation["security"] = [{"ApiKeyAuth": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    # the events endpoints are cheap and have the broker's back-pressure: admission control leaves them be
    app = service_app("gateway", settings, lifespan=lifespan, admission_exempt=("/v1/events",),
                      description="Public REST API of Pickwise: recommendations, search, catalog reads, events. "
                                  "Every `/v1/*` call needs an `X-API-Key` header.")
    limits = app.state.rate_limits = RateLimits(settings)
    app.state.cf_catalogs = CfCatalogs()
    # without the lifespan (unit tests) it has no producer: impressions are counted as no_producer
    app.state.impressions = ImpressionLog(queue_max=settings.impression_queue_max,
                                          send_attempts=settings.impression_send_attempts,
                                          enabled=settings.impressions_enabled,
                                          linger_s=settings.impression_linger_ms / 1000)
    # innermost (after request ids, metrics, tracing and admission), so a rejected call still carries its
    # request id
    app.user_middleware.append(Middleware(PublicApiMiddleware, api_keys=settings.api_keys, limits=limits,
                                          trusted_proxies=settings.trusted_proxies))
    # outermost: every response, errors included, carries the security headers
    app.add_middleware(SecurityHeadersMiddleware, trusted_proxies=settings.trusted_proxies)
    app.include_router(api.router)
    app.include_router(events_api.router)
    app.include_router(users_api.router)
    web.mount(app)
    app.openapi = lambda: _openapi_with_api_key(app)  # type: ignore[method-assign]
    return app
