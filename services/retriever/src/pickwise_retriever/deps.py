"""Route dependencies of the retriever, declared once (tests can override them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pickwise_common.errors import DependencyUnavailable
from pickwise_retriever.popularity import Popularity
from pickwise_retriever.retrieval import Retriever


def get_retriever(request: Request) -> Retriever:
    retriever = getattr(request.app.state, "retriever", None)
    if retriever is None or not len(retriever.catalog):
        raise DependencyUnavailable("the catalog is not loaded yet: run `pickwise-pipeline ingest`",
                                    dependency="catalog", retry_after_s=5)
    return retriever


def get_popularity(request: Request) -> Popularity:
    return request.app.state.popularity


RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
PopularityDep = Annotated[Popularity, Depends(get_popularity)]
