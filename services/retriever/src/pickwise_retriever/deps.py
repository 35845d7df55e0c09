"""Route dependencies of the retriever, declared once (tests can override them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from pickwise_common.errors import DependencyUnavailable
from pickwise_retriever.cf_serving import CatalogItems, CfModels, RetrieverItems
from pickwise_retriever.config import RetrieverSettings
from pickwise_retriever.popularity import Popularity
from pickwise_retriever.retrieval import Retriever


def get_retriever(request: Request) -> Retriever:
    retriever = getattr(request.app.state, "retriever", None)
    if retriever is None or not any(len(c) for c in retriever.catalogs.values()):
        raise DependencyUnavailable("the catalog is not loaded yet: run `pickwise-pipeline ingest`",
                                    dependency="catalog", retry_after_s=5)
    return retriever


def get_popularity(request: Request) -> Popularity:
    return request.app.state.popularity


def get_settings(request: Request) -> RetrieverSettings:
    return request.app.state.settings


def get_cf_models(request: Request) -> CfModels:
    return request.app.state.cf_models


def get_redis(request: Request) -> Any | None:
    """The retriever's Redis client, or None when it started without one (the CF feed degrades)."""
    return getattr(request.app.state, "redis", None)


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
PopularityDep = Annotated[Popularity, Depends(get_popularity)]
SettingsDep = Annotated[RetrieverSettings, Depends(get_settings)]
CfModelsDep = Annotated[CfModels, Depends(get_cf_models)]
RedisDep = Annotated[Any | None, Depends(get_redis)]


def get_catalog_items(retriever: RetrieverDep) -> CatalogItems:
    return RetrieverItems(retriever)


CatalogItemsDep = Annotated[CatalogItems, Depends(get_catalog_items)]
