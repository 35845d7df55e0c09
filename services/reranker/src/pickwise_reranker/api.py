"""Routes of the reranker: thin translation between HTTP and the ranking pipeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from pickwise_common.app import require_admin_key
from pickwise_common.catalogs import catalog_spec
from pickwise_common.errors import InvalidInput
from pickwise_common.schemas import ErrorBody, RerankRequest, RerankResponse
from pickwise_reranker.deps import RerankerDep, SettingsDep
from pickwise_reranker.models import model_status, reload_models
from pickwise_reranker.ranking import Reranker

router = APIRouter()
# the same operations as FastAPI documents them from a model-typed body: /openapi.json is built from these
# (app.py), the served routes read the body themselves
docs_router = APIRouter()

RERANK: dict[str, Any] = {
    "response_model": RerankResponse, "tags": ["rerank"],
    "summary": "Order retrieval candidates: cross-encoder, learned ranker, behaviour boost",
    "responses": {404: {"model": ErrorBody, "description": "unknown `catalog`"}}}


async def rerank_request(request: Request) -> RerankRequest:
    """The body parsed and validated in one pass (``model_validate_json`` on the bytes: no JSON -> dict -> model
    round, which for 50 candidates cost more CPU than the ranker, issue 13); errors as FastAPI reports them."""
    try:
        return RerankRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False, include_input=False)]
        raise RequestValidationError(errors) from None


RerankBody = Annotated[RerankRequest, Depends(rerank_request)]


async def _rerank(body: RerankRequest, reranker: Reranker) -> RerankResponse:
    catalog_spec(body.catalog)  # the behaviour boost reads that catalog's keys: an unknown one is a 404 up front
    seen: set[str] = set()
    for n, cand in enumerate(body.candidates):
        if cand.item.item_id in seen:
            raise InvalidInput(f"candidate {cand.item.item_id!r} is listed twice", fields=[
                {"field": f"body.candidates.{n}.item.item_id", "message": "duplicate item_id", "type": "duplicate"}])
        seen.add(cand.item.item_id)
    return await reranker.rerank(body)


@router.post("/v1/rerank", include_in_schema=False, **RERANK)
async def rerank(body: RerankBody, reranker: RerankerDep) -> RerankResponse:
    return await _rerank(body, reranker)


@docs_router.post("/v1/rerank", name="rerank", **RERANK)
async def rerank_documented(body: RerankRequest, reranker: RerankerDep) -> RerankResponse:
    return await _rerank(body, reranker)


@router.post("/v1/admin/reload", tags=["admin"],
             summary="Resolve the ranker aliases again and reload them (and the cross-encoder if absent)")
async def reload(reranker: RerankerDep, settings: SettingsDep,
                 x_admin_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    require_admin_key(settings, x_admin_key)
    changed = await reload_models(reranker, settings)
    champion = reranker.rankers.pick("champion")
    return {"status": "reloaded", "ranker": champion.model.name if champion else None,
            "cross_encoder": reranker.cross_encoder.name if reranker.cross_encoder else None,
            "changed": changed, "rankers": model_status(reranker, settings)["rankers"]}
