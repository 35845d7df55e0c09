"""Dependencies of the reranker's routes, declared once as ``Annotated`` aliases (tests can override them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pickwise_reranker.config import RerankerSettings
from pickwise_reranker.ranking import Reranker


def get_settings(request: Request) -> RerankerSettings:
    return request.app.state.settings


def get_reranker(request: Request) -> Reranker:
    return request.app.state.reranker


SettingsDep = Annotated[RerankerSettings, Depends(get_settings)]
RerankerDep = Annotated[Reranker, Depends(get_reranker)]
