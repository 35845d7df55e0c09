"""Dependencies of the gateway's routes, declared once as ``Annotated`` aliases (tests can override them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from pickwise_common.http import ServiceClient
from pickwise_common.kafka import JsonProducer
from pickwise_gateway.cf_availability import CfCatalogs
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.impressions import ImpressionLog
from pickwise_gateway.known_items import KnownItems
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.session_events import SessionEventPublisher
from pickwise_gateway.tenancy import CATALOG_PATTERN, CatalogScope, scope_of


async def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


async def get_producer(request: Request) -> JsonProducer:
    return request.app.state.producer


async def get_known_items(request: Request) -> KnownItems:
    return request.app.state.known_items


async def get_clients(request: Request) -> dict[str, ServiceClient]:
    return request.app.state.clients


async def get_recommender(request: Request) -> Recommender:
    return request.app.state.recommender


async def get_impressions(request: Request) -> ImpressionLog:
    return request.app.state.impressions


async def get_publisher(request: Request) -> SessionEventPublisher:
    return request.app.state.session_events


async def get_redis(request: Request) -> Any | None:
    """The gateway's Redis client, or None when it started without one (features and fallback degrade)."""
    return getattr(request.app.state, "redis", None)


async def get_cf_catalogs(request: Request) -> CfCatalogs:
    return request.app.state.cf_catalogs


async def get_retriever(request: Request) -> ServiceClient:
    return request.app.state.clients["retriever"]


async def get_catalog_scope(request: Request) -> CatalogScope:
    """The catalogs the request's API key may use (set by PublicApiMiddleware; unrestricted without it)."""
    state = request.scope.get("state") or {}
    return scope_of(state.get("api_key_id"), state.get("api_key_catalogs"))


CatalogScopeDep = Annotated[CatalogScope, Depends(get_catalog_scope)]


CatalogQuery = Annotated[str | None, Query(
    min_length=1, max_length=32, pattern=CATALOG_PATTERN, examples=["flipkart", "retail"],
    description="catalog (tenant) to serve; default: the API key's catalog when it is limited to one, else flipkart")]


async def get_catalog(scope: CatalogScopeDep, catalog: CatalogQuery = None) -> str:
    """The ``catalog`` query parameter resolved against the API key (404 unknown, 403 not allowed)."""
    return scope.resolve(catalog, field="query.catalog")


async def get_item_catalog(request: Request, scope: CatalogScopeDep, catalog: CatalogQuery = None) -> str:
    """The catalog of an item route (``/v1/items/{item_id}/...``): named, else the key's single catalog, else
    the catalog the item id's prefix names (``or-…`` is retail), else the default."""
    return scope.for_event(catalog, str(request.path_params.get("item_id", "")), field="query.catalog")


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
ProducerDep = Annotated[JsonProducer, Depends(get_producer)]
KnownItemsDep = Annotated[KnownItems, Depends(get_known_items)]
ClientsDep = Annotated[dict[str, ServiceClient], Depends(get_clients)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
PublisherDep = Annotated[SessionEventPublisher, Depends(get_publisher)]
ImpressionsDep = Annotated[ImpressionLog, Depends(get_impressions)]
RetrieverDep = Annotated[ServiceClient, Depends(get_retriever)]
RedisDep = Annotated[Any | None, Depends(get_redis)]
CfCatalogsDep = Annotated[CfCatalogs, Depends(get_cf_catalogs)]
CatalogDep = Annotated[str, Depends(get_catalog)]
ItemCatalogDep = Annotated[str, Depends(get_item_catalog)]
