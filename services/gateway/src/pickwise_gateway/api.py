"""The gateway's public routes: recommendations, search, and the catalog reads proxied to the retriever."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from pickwise_common.catalogs import DEFAULT_CATALOG
from pickwise_common.errors import DependencyUnavailable, InvalidInput, PickwiseError
from pickwise_common.http import DownstreamError
from pickwise_common.public_api import (
    MAX_K,
    PopularResponse,
    RecommendationRequest,
    RecommendationResponse,
    SimilarResponse,
)
from pickwise_common.schemas import MAX_QUERY_CHARS, ErrorBody, Item
from pickwise_common.telemetry import request_id_var
from pickwise_gateway import impressions, variants
from pickwise_gateway.deps import (
    CatalogDep,
    CatalogScopeDep,
    ImpressionsDep,
    ItemCatalogDep,
    PublisherDep,
    RecommenderDep,
    RetrieverDep,
    SettingsDep,
)

router = APIRouter(prefix="/v1")

ID_PATTERN = r"^[A-Za-z0-9._:@\-]+$"
# at least one letter or digit, so "." and ".." never reach the retriever as path segments
ITEM_ID_PATTERN = r"^[A-Za-z0-9._:@\-]*[A-Za-z0-9][A-Za-z0-9._:@\-]*$"
ItemId = Annotated[str, Path(min_length=1, max_length=128, pattern=ITEM_ID_PATTERN, description="catalog item id")]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid X-API-Key"},
    403: {"model": ErrorBody, "description": "the API key may not use this `catalog` (or lacks the scope)"},
    404: {"model": ErrorBody, "description": "unknown `catalog`"},
    422: {"model": ErrorBody, "description": "invalid input; `error.fields` names each offending field"},
    429: {"model": ErrorBody, "description": "rate limit of this API key exceeded (see Retry-After)"},
    503: {"model": ErrorBody, "description": "a dependency the answer cannot live without is down"},
}


def _json(model: RecommendationResponse) -> Response:
    """Serialise once, in pydantic's Rust serializer (``response_model`` stays for the OpenAPI schema;
    returning a Response skips FastAPI's dump-validate-serialise round trip)."""
    return Response(model.model_dump_json(), media_type="application/json")


def _request_id() -> str:
    return request_id_var.get() or ""


async def _serve_logged(recommender: Any, log: impressions.ImpressionLog, body: RecommendationRequest,
                        variant: variants.Variant, request_id: str, endpoint: str) -> RecommendationResponse:
    """Serve, then queue the impression of what was shown (of the failure, for a 5xx)."""
    started = time.perf_counter()
    try:
        response, outcome = await recommender.serve(body, request_id=request_id, variant=variant, endpoint=endpoint)
    except Exception as exc:
        status = exc.status_code if isinstance(exc, PickwiseError) else 500
        if status >= 500 and log.enabled:
            log.record(impressions.failed_impression(
                request_id=request_id, endpoint=endpoint, catalog=body.catalog or DEFAULT_CATALOG,
                user_id=body.user_id, session_id=body.session_id, query=body.query, experiment=variant.experiment,
                variant=variant.name, status=status, latency_ms=round((time.perf_counter() - started) * 1000, 2)))
        raise
    if not log.enabled:
        return response
    log.record(impressions.search_impression(
        response, endpoint=endpoint, user_id=body.user_id, session_id=body.session_id,
        experiment=variant.experiment, explore=outcome.explore.record() if outcome.explore else None,
        teams=outcome.teams))
    return response


@router.post("/recommendations", response_model=RecommendationResponse, tags=["recommendations"],
             summary="Ranked products with a grounded answer", responses=ERRORS)
async def recommendations(body: RecommendationRequest, recommender: RecommenderDep, settings: SettingsDep,
                          publisher: PublisherDep, scope: CatalogScopeDep, impression_log: ImpressionsDep) -> Response:
    """Session history → retrieval → reranking → grounded answer, each hop inside its time budget.
    When a hop fails the response is still 200, with `degraded: true` and the reasons. Without `catalog`,
    the API key's catalog when it is limited to one, else flipkart."""
    body = body.model_copy(update={"catalog": scope.resolve(body.catalog, field="body.catalog")})
    request_id = _request_id()
    variant = variants.variant_for(settings, user_id=body.user_id, session_id=body.session_id,
                                   request_id=request_id)
    response = await _serve_logged(recommender, impression_log, body, variant, request_id, "recommendations")
    publisher.publish(body, response)
    return _json(response)


@router.get("/search", response_model=RecommendationResponse, tags=["recommendations"],
            summary="Ranked products, no generated answer", responses=ERRORS)
async def search(
    recommender: RecommenderDep, settings: SettingsDep, publisher: PublisherDep, catalog: CatalogDep,
    impression_log: ImpressionsDep,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="free-text query",
                            examples=["samsung 8gb ram under 20k"])],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)] = None,
    session_id: Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)] = None,
) -> Response:
    try:
        body = RecommendationRequest(query=q, catalog=catalog, k=k, user_id=user_id, session_id=session_id,
                                     generate=False)
    except ValidationError as exc:  # e.g. a blank q: name the query parameter, as FastAPI does
        fields = [{"field": "query." + ("q" if err["loc"][:1] == ("query",) else ".".join(map(str, err["loc"]))),
                   "message": err["msg"], "type": err["type"]} for err in exc.errors()]
        raise InvalidInput(f"invalid {fields[0]['field']}: {fields[0]['message']}", fields=fields) from exc
    request_id = _request_id()
    variant = variants.variant_for(settings, user_id=user_id, session_id=session_id, request_id=request_id)
    response = await _serve_logged(recommender, impression_log, body, variant, request_id, "search")
    publisher.publish(body, response)
    return _json(response)


async def _fetch(retriever: Any, path: str, params: dict[str, Any]) -> tuple[Any, int]:
    """GET from the retriever: its JSON body and status (its 4xx answers included, to pass through)."""
    try:
        response = await retriever.request("GET", path, params={k: v for k, v in params.items() if v is not None})
    except DownstreamError as exc:
        return (exc.body if isinstance(exc.body, dict) else {"error": {"code": "http_error",
                "message": str(exc.body), "fields": [], "request_id": _request_id()}}), exc.status_code
    try:
        return response.json(), response.status_code
    except ValueError as exc:
        raise DependencyUnavailable("retriever answered with something other than JSON",
                                    dependency="retriever") from exc


async def _proxy(retriever: Any, path: str, params: dict[str, Any]) -> JSONResponse:
    """GET from the retriever, passing its JSON (and its 4xx statuses) through unchanged."""
    body, status = await _fetch(retriever, path, params)
    return JSONResponse(body, status_code=status)


async def proxy_list(retriever: Any, path: str, params: dict[str, Any], *, log: impressions.ImpressionLog,
                     endpoint: str, catalog: str, list_field: str, score_field: str) -> JSONResponse:
    """A proxied item list (similar, bought together): the answer gains the request id and its impression is
    queued (decision 1001)."""
    started = time.perf_counter()
    body, status = await _fetch(retriever, path, params)
    if status == 200 and isinstance(body, dict):
        request_id = body["request_id"] = _request_id()
        if log.enabled:
            log.record(impressions.list_impression(
                body, request_id=request_id, endpoint=endpoint, catalog=catalog, list_field=list_field,
                score_field=score_field, latency_ms=round((time.perf_counter() - started) * 1000, 2)))
    return JSONResponse(body, status_code=status)


NOT_FOUND = {404: {"model": ErrorBody, "description": "no such item in the catalog, or unknown `catalog`"}}


@router.get("/items/{item_id}", response_model=Item, tags=["catalog"], summary="One catalog item",
            responses={**ERRORS, **NOT_FOUND})
async def item(item_id: ItemId, retriever: RetrieverDep, catalog: ItemCatalogDep) -> JSONResponse:
    return await _proxy(retriever, f"/v1/items/{item_id}", {"catalog": catalog})


@router.get("/items/{item_id}/similar", response_model=SimilarResponse, tags=["catalog"],
            summary="Items similar to one item: CF neighbours where it has purchase history, content otherwise",
            responses={**ERRORS, **NOT_FOUND})
async def similar(item_id: ItemId, retriever: RetrieverDep, catalog: ItemCatalogDep, impression_log: ImpressionsDep,
                  k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> JSONResponse:
    """`source` says which answered: `cf` (neighbours by the ALS factors of the catalog's CF model, decision
    0813) or `content` (by embedding: the item has no history, or the catalog no CF model)."""
    return await proxy_list(retriever, f"/v1/cf/items/{item_id}/similar", {"k": k, "catalog": catalog},
                            log=impression_log, endpoint="similar", catalog=catalog, list_field="candidates",
                            score_field="fused_score")


@router.get("/popular", response_model=PopularResponse, tags=["catalog"], summary="Most popular items",
            responses=ERRORS)
async def popular(retriever: RetrieverDep, catalog: CatalogDep,
                  k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> JSONResponse:
    return await _proxy(retriever, "/v1/popular", {"k": k, "catalog": catalog})
