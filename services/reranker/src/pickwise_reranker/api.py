"""Routes of the reranker: thin translation between HTTP and the ranking pipeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header

from pickwise_common.app import require_admin_key
from pickwise_common.catalogs import catalog_spec
from pickwise_common.errors import InvalidInput
from pickwise_common.schemas import ErrorBody, RerankRequest, RerankResponse
from pickwise_reranker.deps import RerankerDep, SettingsDep
from pickwise_reranker.models import reload_models

router = APIRouter()


@router.post("/v1/rerank", response_model=RerankResponse, tags=["rerank"],
             summary="Order retrieval candidates: cross-encoder, learned ranker, behaviour boost",
             responses={404: {"model": ErrorBody, "description": "unknown `catalog`"}})
async def rerank(body: RerankRequest, reranker: RerankerDep) -> RerankResponse:
    catalog_spec(body.catalog)  # the behaviour boost reads that catalog's keys: an unknown one is a 404 up front
    seen: set[str] = set()
    for n, cand in enumerate(body.candidates):
        if cand.item.item_id in seen:
            raise InvalidInput(f"candidate {cand.item.item_id!r} is listed twice", fields=[
                {"field": f"body.candidates.{n}.item.item_id", "message": "duplicate item_id", "type": "duplicate"}])
        seen.add(cand.item.item_id)
    return await reranker.rerank(body)


@router.post("/v1/admin/reload", tags=["admin"], summary="Reload the newest ranker model (and cross-encoder)")
async def reload(reranker: RerankerDep, settings: SettingsDep,
                 x_admin_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    require_admin_key(settings, x_admin_key)
    await reload_models(reranker, settings)
    return {"status": "reloaded", "ranker": reranker.ranker.name if reranker.ranker else None,
            "cross_encoder": reranker.cross_encoder.name if reranker.cross_encoder else None}
