"""Routes of CF serving (decision 0813): a user's feed, CF neighbours (content similarity where the item has no
history), bought-together, and the admin reload of the CF models. Thin: the logic is in ``cf_serving``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query

from pickwise_common import redis as rd
from pickwise_common.app import require_admin_key
from pickwise_common.catalogs import DEFAULT_CATALOG, CatalogName, catalog_spec
from pickwise_common.errors import NotFound
from pickwise_common.public_api import SimilarResponse
from pickwise_common.schemas import (
    BoughtTogetherItem,
    BoughtTogetherResponse,
    Candidate,
    CfRecommendRequest,
    CfRecommendResponse,
    CfScoredItem,
    ErrorBody,
    Item,
)
from pickwise_retriever import api, cf_serving
from pickwise_retriever.deps import CatalogItemsDep, CfModelsDep, PopularityDep, RedisDep, RetrieverDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["cf"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no such item or catalog"}}
CatalogQuery = Annotated[CatalogName, Query(description="catalog (tenant)")]
K = Annotated[int, Query(ge=1, le=100)]


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def _scored(items: cf_serving.CatalogItems, catalog: str, feed: cf_serving.Feed, explain: bool) -> list[CfScoredItem]:
    out = []
    for scored in feed.items:
        item = items.item(catalog, scored.item_id)
        if item is not None:
            out.append(CfScoredItem(item=item, score=scored.score, reason=cf_serving.reason_of(scored.sources),
                                    sources=scored.sources if explain else None))
    return out


@router.post("/cf/recommend", response_model=CfRecommendResponse, responses=NOT_FOUND,
             summary="A user's feed: repeat purchases, ALS on the folded-in history, recent-click neighbours, "
                     "popularity; never a dismissed item")
async def recommend(body: CfRecommendRequest, models: CfModelsDep, redis: RedisDep, items: CatalogItemsDep,
                    settings: SettingsDep) -> CfRecommendResponse:
    catalog = catalog_spec(body.catalog).name
    model = models.get(catalog)
    response = CfRecommendResponse(catalog=catalog, user_id=body.user_id, model_version=None, cold_start=True,
                                   items=[])
    if model is None:  # no CF model for this catalog: the caller serves its content feed
        return response
    response.model_version = models.label(catalog, model)
    start = time.perf_counter()
    known = items.known(catalog)
    try:
        state = await cf_serving.read_user_state(redis, catalog, body.user_id) if redis is not None else None
    except rd.REDIS_ERRORS:  # without the user's state: popularity, and the response says why
        state = None
    response.timings_ms["user_state"] = _ms(start)
    start = time.perf_counter()
    if state is None:
        response.degraded = True
        response.degradation_reasons.append("features_unavailable")
    # the fold-in solve and the scoring of every item take a few ms of CPU: off the event loop
    feed = await anyio.to_thread.run_sync(lambda: cf_serving.recommend(
        model, state or cf_serving.UserState(), body.k, exclude=body.exclude_item_ids,
        click_weight=settings.cf_click_weight if state is not None else 0.0, known=known))
    response.timings_ms["blend"] = _ms(start)
    response.cold_start = feed.cold_start
    response.items = _scored(items, catalog, feed, body.explain)
    return response


@router.get("/cf/items/{item_id}/similar", response_model=SimilarResponse, responses=NOT_FOUND,
            summary="CF neighbours of an item with purchase history, content (embedding) neighbours otherwise")
async def similar(item_id: api.ItemId, models: CfModelsDep, items: CatalogItemsDep, retriever: RetrieverDep,
                  popularity: PopularityDep, catalog: CatalogQuery = DEFAULT_CATALOG, k: K = 10) -> SimilarResponse:
    catalog = catalog_spec(catalog).name
    _item_of(items, catalog, item_id)
    model = models.get(catalog)
    if model is not None:
        known = items.known(catalog)
        pairs = [(other, score) for other, score in model.similar_items(item_id, cf_serving.NEIGHBOURS_PER_CLICK + k)
                 if other != item_id and known(other)][:k]
        candidates = [Candidate(item=item, fused_score=round(score, 6))
                      for other, score in pairs if (item := items.item(catalog, other)) is not None]
        if candidates:
            return SimilarResponse(item_id=item_id, candidates=candidates, catalog=catalog, source="cf",
                                   model_version=models.label(catalog, model))
    content = await api.similar(item_id, retriever, popularity, k=k, catalog=catalog)
    return SimilarResponse(item_id=item_id, candidates=content.candidates, catalog=catalog, source="content",
                           model_version=models.label(catalog, model) if model is not None else None)


@router.get("/cf/items/{item_id}/bought-together", response_model=BoughtTogetherResponse, responses=NOT_FOUND,
            summary="Items bought in the same baskets, best NPMI first, with lift and support (empty when none passes "
                    "the minimum support)")
async def bought_together(item_id: api.ItemId, models: CfModelsDep, items: CatalogItemsDep,
                          catalog: CatalogQuery = DEFAULT_CATALOG, k: K = 10) -> BoughtTogetherResponse:
    catalog = catalog_spec(catalog).name
    _item_of(items, catalog, item_id)
    model = models.get(catalog)
    out: list[BoughtTogetherItem] = []
    if model is not None:
        for other, lift, npmi, support in model.bought_together_items(item_id, cf_serving.NEIGHBOURS_PER_CLICK + k):
            item = items.item(catalog, other)
            if item is not None and other != item_id:
                out.append(BoughtTogetherItem(item=item, lift=round(lift, 6), npmi=round(npmi, 6), support=support))
            if len(out) >= k:
                break
    return BoughtTogetherResponse(item_id=item_id, catalog=catalog,
                                  model_version=models.label(catalog, model) if model is not None else None, items=out)


def _item_of(items: cf_serving.CatalogItems, catalog: str, item_id: str) -> Item:
    item = items.item(catalog, item_id)
    if item is None:
        raise NotFound(f"item {item_id!r} is not in catalog {catalog!r}",
                       fields=[{"field": "path.item_id", "message": "no such item in this catalog"}])
    return item


@router.post("/admin/reload", tags=["admin"],
             summary="Load every catalog's CF model now (the registry's champion, else the newest directory)")
async def reload(models: CfModelsDep, settings: SettingsDep,
                 x_admin_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    require_admin_key(settings, x_admin_key)
    changed = await cf_serving.refresh_now(models, force=True)
    return {"status": "reloaded", "changed": changed, "versions": models.status()["versions"]}

