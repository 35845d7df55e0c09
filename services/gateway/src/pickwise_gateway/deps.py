"""FastAPI dependencies of the gateway's routes (declared once, overridable in tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pickwise_common.http import ServiceClient
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.session_events import SessionEventPublisher


def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def get_recommender(request: Request) -> Recommender:
    return request.app.state.recommender


def get_publisher(request: Request) -> SessionEventPublisher:
    return request.app.state.session_events


def get_retriever(request: Request) -> ServiceClient:
    return request.app.state.clients["retriever"]


def get_redis(request: Request) -> object | None:
    return getattr(request.app.state, "redis", None)


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
PublisherDep = Annotated[SessionEventPublisher, Depends(get_publisher)]
RetrieverDep = Annotated[ServiceClient, Depends(get_retriever)]
RedisDep = Annotated[object | None, Depends(get_redis)]
