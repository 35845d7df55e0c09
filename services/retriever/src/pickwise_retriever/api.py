"""Routes of the retriever: thin translation between HTTP and the retrieval domain. Every route serves one catalog:
the body's ``catalog`` (``/v1/retrieve``) or the ``catalog`` query parameter (default flipkart; for an item, the
catalog its id prefix names); an unknown or unloaded catalog is a 404 naming the field."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from pickwise_common.catalogs import DEFAULT_CATALOG, catalog_of_item
from pickwise_common.errors import NotFound
from pickwise_common.public_api import PopularResponse, SimilarResponse
from pickwise_common.schemas import Candidate, ErrorBody, Item, RetrieveRequest, RetrieveResponse
from pickwise_retriever.catalog import Catalog
from pickwise_retriever.deps import PopularityDep, RetrieverDep
from pickwise_retriever.retrieval import Retriever

router = APIRouter(prefix="/v1")
ItemId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no such item or catalog"}}
UNKNOWN_CATALOG: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown `catalog`, or one not loaded yet"}}
CatalogQuery = Annotated[str | None, Query(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$",
                                           description="catalog to serve (default flipkart; for an item, "
                                                       "the catalog its id prefix names)")]


@router.post("/retrieve", response_model=RetrieveResponse, summary="Parse, search, fuse, group",
             responses=UNKNOWN_CATALOG)
async def retrieve(body: RetrieveRequest, retriever: RetrieverDep, popularity: PopularityDep) -> RetrieveResponse:
    async def normalised(item_ids: list[str]) -> dict[str, float]:
        return await popularity.normalised(item_ids, body.catalog)

    return await retriever.retrieve(body, normalised)


def _item(retriever: Retriever, item_id: str, catalog: str | None) -> tuple[Catalog, Item]:
    loaded = retriever.catalog_for(catalog or catalog_of_item(item_id) or DEFAULT_CATALOG)
    item = loaded.item(item_id)
    if item is None:
        raise NotFound(f"item {item_id!r} is not in the catalog {loaded.name!r}")
    return loaded, item


@router.get("/items/{item_id}", response_model=Item, summary="One catalog item", responses=NOT_FOUND)
async def item(item_id: ItemId, retriever: RetrieverDep, catalog: CatalogQuery = None) -> Item:
    return _item(retriever, item_id, catalog)[1]


@router.get("/items/{item_id}/similar", response_model=SimilarResponse, responses=NOT_FOUND,
            summary="Nearest neighbours by embedding, the item's own colour variants excluded")
async def similar(item_id: ItemId, retriever: RetrieverDep, popularity: PopularityDep,
                  k: Annotated[int, Query(ge=1, le=100)] = 10, catalog: CatalogQuery = None) -> SimilarResponse:
    loaded, _ = _item(retriever, item_id, catalog)
    hits = await retriever.similar(item_id, k, loaded.name)
    items = loaded.items
    pop = await popularity.normalised([items[n].item_id for n, _, _ in hits], loaded.name)
    return SimilarResponse(item_id=item_id, candidates=[
        Candidate(item=items[n], dense_score=score, fused_score=score,
                  variant_ids=[items[v].item_id for v in variants], popularity=pop.get(items[n].item_id, 0.0))
        for n, score, variants in hits])


@router.get("/popular", response_model=PopularResponse, responses=UNKNOWN_CATALOG,
            summary="Most popular items: last 24 h, then 7 d, then all time; topped up in catalog rating order")
async def popular(retriever: RetrieverDep, popularity: PopularityDep,
                  k: Annotated[int, Query(ge=1, le=100)] = 10, catalog: CatalogQuery = None) -> PopularResponse:
    loaded = retriever.catalog_for(catalog)
    ranked, source = await popularity.top(k, known=loaded.index_of.__contains__, catalog=loaded.name)
    return _popular(loaded, ranked, source, k)


def _popular(catalog: Catalog, ranked: list[tuple[str, float]], source: str, k: int) -> PopularResponse:
    chosen: list[tuple[int, float]] = []
    seen_groups: set[str] = set()
    best = ranked[0][1] if ranked else 0.0
    for item_id, score in ranked:
        n = catalog.index_of.get(item_id)
        if n is None or catalog.items[n].group_id in seen_groups:
            continue
        seen_groups.add(catalog.items[n].group_id)
        chosen.append((n, score / best if best > 0 else 0.0))
        if len(chosen) >= k:
            break
    if len(chosen) < k:
        # a quiet tier (two items clicked in the last 24 h) is topped up in rating order: a full shelf
        source = source if chosen else "rating"
        order = sorted(range(len(catalog)), key=lambda n: (-catalog.fallback_score[n], n))
        for n in order:
            if catalog.items[n].group_id in seen_groups:
                continue
            seen_groups.add(catalog.items[n].group_id)
            chosen.append((n, 0.0))
            if len(chosen) >= k:
                break
    return PopularResponse(source=source, candidates=[
        Candidate(item=catalog.items[n], fused_score=score, popularity=score,
                  variant_ids=[catalog.items[v].item_id for v in catalog.groups[catalog.items[n].group_id] if v != n])
        for n, score in chosen])
