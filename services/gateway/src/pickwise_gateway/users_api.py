"""Public routes of collaborative filtering (decision 0813): a user's feed, ``GET /v1/users/{user_id}/recommendations``,
and an item's bought-together list. The retriever serves CF (``/v1/cf/*``); a catalog without a CF model, or a
retriever that cannot answer, gets the content feed (``feed.content_feed``), degraded where it had to be."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from pickwise_common import redis as rd
from pickwise_common.errors import DependencyUnavailable, NotFound
from pickwise_common.http import DownstreamError, ServiceClient
from pickwise_common.public_api import MAX_K, BoughtTogetherPage, FeedItem, FeedResponse
from pickwise_common.schemas import CfRecommendRequest, CfRecommendResponse, ErrorBody
from pickwise_common.telemetry import request_id_var
from pickwise_gateway import feed, impressions, overshown
from pickwise_gateway.api import ERRORS, ItemId, proxy_list
from pickwise_gateway.cf_availability import CfCatalogs
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.deps import (
    CatalogDep,
    CfCatalogsDep,
    ClientsDep,
    ImpressionsDep,
    ItemCatalogDep,
    RedisDep,
    RetrieverDep,
    SettingsDep,
)

log = logging.getLogger("pickwise.gateway.users")

router = APIRouter(prefix="/v1")

FEED_MAX_K = 100
CF_TIMEOUT_MS = 500        # the retriever's fold-in and blend take a few ms; past this the content feed answers
DISMISSED_MAX = 1000       # a content feed reads at most this many of the user's dismissed items
EXCLUDE_MAX = 500          # CfRecommendRequest.exclude_item_ids holds at most this many

UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
FEED_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"model": ErrorBody, "description": "the API key may not use this `catalog`"},
    404: {"model": ErrorBody, "description": "unknown `catalog`"},
}


def feed_items(answer: CfRecommendResponse, explain: bool) -> list[FeedItem]:
    return [FeedItem(item=s.item, score=s.score, reason=s.reason, sources=s.sources if explain else None)
            for s in answer.items]


async def _dismissed(redis: Any | None, user_id: str, catalog: str) -> set[str]:
    """The user's dismissed items for the content feed; none when Redis cannot say (the feed lives without)."""
    if redis is None:
        return set()
    try:
        return set(await redis.srandmember(rd.user_dismissed_key(user_id, catalog), DISMISSED_MAX) or ())
    except rd.REDIS_ERRORS as exc:
        log.info("dismissed items unavailable: %s", exc)
        return set()


@router.get("/users/{user_id}/recommendations", response_model=FeedResponse, tags=["feed"],
            summary="A user's personal feed: collaborative filtering where the catalog has a model",
            responses=FEED_ERRORS)
async def user_recommendations(user_id: UserId, redis: RedisDep, clients: ClientsDep, catalog: CatalogDep,
                               cf_catalogs: CfCatalogsDep, settings: SettingsDep, impression_log: ImpressionsDep,
                               k: Annotated[int, Query(ge=1, le=FEED_MAX_K)] = 10,
                               explain: Annotated[bool, Query(description="each item's sources and their "
                                                                          "contributions")] = False) -> FeedResponse:
    """With a CF model for the catalog: the user's repeat purchases, ALS on their history folded in at request
    time (a purchase shows in the next feed, no retraining), neighbours of their recent clicks and popularity;
    never an item they dismissed, nor one shown to them `PICKWISE_OVERSHOWN_AFTER` times
    without engagement; `cold_start: true` for a user with no history (popularity). Without one: the
    content feed (neighbours of recent clicks by embedding, preferred brands, popularity)."""
    started = time.perf_counter()
    response = await _feed(user_id, redis, clients, catalog, cf_catalogs, settings, k, explain)
    response.request_id = request_id_var.get() or ""
    if impression_log.enabled:
        impression_log.record(impressions.feed_impression(
            response, request_id=response.request_id, latency_ms=round((time.perf_counter() - started) * 1000, 2)))
    return response


async def _feed(user_id: str, redis: Any | None, clients: dict[str, ServiceClient], catalog: str,
                cf_catalogs: CfCatalogs, settings: GatewaySettings, k: int, explain: bool) -> FeedResponse:
    """The feed of ``user_recommendations``, before its request id and impression."""
    # items shown to the user many times without engagement stay out of the feed (decision 1001)
    overshown_ids = await overshown.overshown_ids(redis, user_id, catalog, settings.overshown_after,
                                                  budget_ms=settings.overshown_budget_ms)
    start = time.perf_counter()
    reasons: list[str] = []
    body = CfRecommendRequest(catalog=catalog, user_id=user_id, k=k, explain=explain,
                              exclude_item_ids=sorted(overshown_ids)[:EXCLUDE_MAX])
    answer: CfRecommendResponse | None = None
    if cf_catalogs.maybe_has_model(catalog):
        try:
            answer = CfRecommendResponse.model_validate(await clients["retriever"].post_json(
                "/v1/cf/recommend", body.model_dump(mode="json"), timeout_ms=CF_TIMEOUT_MS, idempotent=True))
        except (DependencyUnavailable, DownstreamError, NotFound, ValidationError) as exc:
            log.info("CF feed unavailable, serving the content feed: %s", exc)
            reasons.append("retriever_unavailable")
            feed.FEED_DEGRADED.labels("retriever_unavailable").inc()
        else:
            if answer.model_version is None:
                cf_catalogs.no_model(catalog)
    cf_ms = round((time.perf_counter() - start) * 1000, 2)
    if answer is not None and answer.model_version is not None:
        reasons += [r for r in answer.degradation_reasons if r not in reasons]
        return FeedResponse(user_id=user_id, catalog=catalog, items=feed_items(answer, explain),
                            cold_start=answer.cold_start, model_version=answer.model_version,
                            degraded=bool(reasons), degradation_reasons=reasons,
                            timings_ms={"cf": cf_ms, **{f"retriever_{k}": v for k, v in answer.timings_ms.items()}})
    response = await feed.content_feed(user_id, redis, clients, catalog, k,
                                       exclude=await _dismissed(redis, user_id, catalog) | overshown_ids)
    for reason in reasons:
        if reason not in response.degradation_reasons:
            response.degradation_reasons.append(reason)
    response.degraded = bool(response.degradation_reasons)
    response.timings_ms["cf"] = cf_ms
    return response


@router.get("/items/{item_id}/bought-together", response_model=BoughtTogetherPage, tags=["catalog"],
            summary="Items bought in the same baskets as this one, with lift", responses={
                404: {"model": ErrorBody, "description": "no such item or catalog"}, **FEED_ERRORS})
async def bought_together(item_id: ItemId, retriever: RetrieverDep, catalog: ItemCatalogDep,
                          impression_log: ImpressionsDep,
                          k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> JSONResponse:
    """Co-purchases from the catalog's CF model (baskets = invoices) with lift, NPMI and support; an empty
    list when the item has none above the minimum support or the catalog has no model (`model_version` null)."""
    return await proxy_list(retriever, f"/v1/cf/items/{item_id}/bought-together", {"k": k, "catalog": catalog},
                            log=impression_log, endpoint="bought_together", catalog=catalog, list_field="items",
                            score_field="lift")
