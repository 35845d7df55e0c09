"""The retrieval pipeline: parse → merge constraints → BM25 and dense search inside the filtered set →
fusion → ordering (sort intent, exact RAM/storage the shopper named) → variant grouping. Every request is
served from one catalog (``RetrieveRequest.catalog``): its in-memory ``Catalog`` and its Milvus rows."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np

from pickwise_common import schemas
from pickwise_common.bm25 import tokenize
from pickwise_common.catalogs import DEFAULT_CATALOG, UnknownCatalog, catalog_spec
from pickwise_common.constraints import canonical_filters, milvus_filter, relaxations, satisfies
from pickwise_common.embeddings import Embedder
from pickwise_common.schemas import Candidate, Constraints, RetrieveRequest, RetrieveResponse
from pickwise_common.telemetry import stage
from pickwise_retriever import dense, fusion, vectors
from pickwise_retriever.catalog import Catalog, model_series
from pickwise_retriever.facets import facet_counts
from pickwise_retriever.query_parser import ParsedQuery, merge_filters, parse_free_text, parse_query, refine

SERVICE = "retriever"
MODEL_MATCH_WEIGHT = 0.2
SERIES_MATCH_WEIGHT = 0.1
INLINE_SEARCH_MAX_ITEMS = 20_000  # in-process dense search on the event loop up to this catalog size
PopularityLookup = Callable[[list[str]], Awaitable[dict[str, float]]]


@dataclass
class Planned:
    parsed: ParsedQuery
    constraints: Constraints
    refined: bool


def plan(request: RetrieveRequest) -> Planned:
    # the phone catalog has the full parser; another catalog reads only what makes sense for any goods (price,
    # sort intents) and searches the rest as free text (decision 0801)
    parsed = parse_query(request.query) if request.catalog == DEFAULT_CATALOG else parse_free_text(request.query)
    refined = False
    constraints = parsed.constraints
    # a follow-up: a refinement cue ("what about", "cheaper"), or only constraints with no product named
    # ("under 10k", "in black"); "apple phones under 50k" is a new search even in a conversation
    if request.previous is not None and (parsed.refinement or (not parsed.informative and not parsed.names_product)):
        constraints = refine(request.previous, parsed)
        refined = True
    # explicit filters read like parsed ones ('samsung' → Samsung), or a 422 naming the value
    return Planned(parsed, merge_filters(constraints, canonical_filters(request.filters)), refined)


def _order_key(sort: str, catalog: Catalog, n: int) -> float:
    if sort == "price_asc":
        return float(catalog.price[n])
    if sort == "price_desc":
        return -float(catalog.price[n])
    if sort == "rating_desc":
        value = catalog.rating[n]
        return 0.0 if math.isnan(value) else -float(value)
    return 0.0


def catalog_expr(catalog: str, expr: str) -> str:
    """A Milvus filter limited to one catalog's rows (every catalog shares the collection)."""
    own = f'catalog == "{catalog}"'
    return f"{own} and ({expr})" if expr else own


class Retriever:
    def __init__(self, catalogs: Catalog | Mapping[str, Catalog], embedder: Embedder, milvus: Any, collection: str,
                 *, pool_size: int = 400, dense_in_process_max_items: int = 0) -> None:
        self.catalogs: dict[str, Catalog] = {catalogs.name: catalogs} if isinstance(catalogs, Catalog) \
            else dict(catalogs)
        self.embedder = embedder
        self.milvus = milvus
        self.collection = collection
        self.pool_size = pool_size
        # catalogs up to this many items search a copy of their Milvus vectors in process (decision 0907)
        self.dense_in_process_max_items = dense_in_process_max_items
        self._vectors: dict[str, tuple[Catalog, vectors.CatalogVectors]] = {}
        self._vectors_lock = anyio.Lock()

    @property
    def catalog(self) -> Catalog:
        """The default catalog (empty when it is not loaded)."""
        return self.catalogs.get(DEFAULT_CATALOG) or Catalog.from_items([], name=DEFAULT_CATALOG)

    @catalog.setter
    def catalog(self, catalog: Catalog) -> None:
        self.catalogs[catalog.name] = catalog

    def catalog_for(self, name: str | None) -> Catalog:
        """The loaded catalog of that name; an unknown name, or one with no items loaded, is a 404 naming
        the field ``catalog``."""
        spec = catalog_spec(name)
        catalog = self.catalogs.get(spec.name)
        if catalog is None or not len(catalog):
            raise UnknownCatalog(f"catalog {spec.name!r} has no items loaded (run `pickwise-pipeline ingest "
                                 f"--catalog {spec.name}`)",
                                 fields=[{"field": "catalog", "message": f"catalog {spec.name!r} is not loaded"}])
        return catalog

    async def retrieve(self, request: RetrieveRequest, popularity: PopularityLookup) -> RetrieveResponse:
        catalog = self.catalog_for(request.catalog)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        with stage(SERVICE, "parse"):
            planned = plan(request)
        c = planned.constraints
        timings["parse"] = _ms(started)
        response = RetrieveResponse(query=request.query, mode=request.mode,
                                    parsed=schemas.ParsedQuery(**c.model_dump(),
                                                               corrections=planned.parsed.corrections),
                                    refined=planned.refined,
                                    candidates=[], timings_ms=timings)
        if c.impossible:
            response.timings_ms = timings
            return response
        mask, tier, search, response.parsed.relaxed = self._relax(catalog, c, request.k, request.group_variants)
        if not mask.any():
            response.timings_ms = timings
            return response
        parsed = planned.parsed
        pool = max(self.pool_size, request.k * 8)
        # dense reads what the constraints did not take, with the brand ("nokia 2.4", "samsung phone"): prices
        # and sizes are filters, not meaning, and the short texts repeat, so the query cache hits often
        text = " ".join([*c.brands, parsed.text]).strip() or ("phone" if catalog.name == DEFAULT_CATALOG else "gift")

        bm25_scores: dict[str, float] = {}
        dense_scores: dict[str, float] = {}
        if request.mode in ("bm25", "hybrid"):
            t = time.perf_counter()
            with stage(SERVICE, "bm25"):
                bm25_scores = self._bm25(catalog, parsed.text if parsed.informative else "", mask, pool)
            timings["bm25"] = _ms(t)
        if request.mode in ("dense", "hybrid"):
            t = time.perf_counter()
            with stage(SERVICE, "embed"):
                vector = await anyio.to_thread.run_sync(self.embedder.encode_query, text)
            timings["embed"] = _ms(t)
            t = time.perf_counter()
            with stage(SERVICE, "dense"):
                hits = await self._dense(catalog, vector, mask, search, pool)
            dense_scores = {item_id: score for item_id, score in hits if item_id in catalog.index_of}
            timings["dense"] = _ms(t)

        t = time.perf_counter()
        with stage(SERVICE, "fuse"):
            if request.mode == "bm25":
                fused = fusion.min_max(bm25_scores)
            elif request.mode == "dense":
                fused = fusion.min_max(dense_scores)
            elif request.fusion == "rrf":
                fused = fusion.rrf([_ranked(bm25_scores), _ranked(dense_scores)])
            else:
                fused = fusion.weighted(bm25_scores, dense_scores, request.alpha)
            pool_ids = self._pool(catalog, parsed, c, mask, fused, pool)
            if request.mode != "dense" and parsed.informative:
                fused = self._model_match(catalog, pool_ids, fused, parsed.text)
            ordered = self._order(catalog, pool_ids, fused, parsed, c, tier)
            groups = self._group(catalog, ordered, mask, request.k, request.group_variants)
        timings["fuse"] = _ms(t)
        t = time.perf_counter()
        response.facets = facet_counts(catalog.items, ordered, currency=catalog.currency)
        timings["facets"] = _ms(t)

        t = time.perf_counter()
        with stage(SERVICE, "popularity"):
            pop = await popularity([catalog.items[n].item_id for n, _ in groups])
        timings["popularity"] = _ms(t)
        for n, variants in groups:
            item = catalog.items[n]
            response.candidates.append(Candidate(
                item=item, bm25_score=bm25_scores.get(item.item_id), dense_score=dense_scores.get(item.item_id),
                fused_score=round(fused.get(item.item_id, 0.0), 6), satisfies=satisfies(item, c),
                variant_ids=[catalog.items[v].item_id for v in variants],
                popularity=pop.get(item.item_id, 0.0)))
        timings["total"] = _ms(started)
        response.timings_ms = timings
        return response

    # ---------------------------------------------------------------- steps

    async def catalog_vectors(self, catalog: Catalog) -> vectors.CatalogVectors | None:
        """The in-process copy of ``catalog``'s Milvus vectors, copied again whenever the catalog object is
        replaced (a new ingest reloads it); None above the size limit, where Milvus searches."""
        if not 0 < len(catalog) <= self.dense_in_process_max_items:
            return None
        cached = self._vectors.get(catalog.name)
        if cached is not None and cached[0] is catalog:
            return cached[1]
        async with self._vectors_lock:
            cached = self._vectors.get(catalog.name)
            if cached is None or cached[0] is not catalog:
                ids = [item.item_id for item in catalog.items]
                copied = await anyio.to_thread.run_sync(
                    lambda: vectors.load(self.milvus, self.collection, catalog.name, ids))
                self._vectors[catalog.name] = cached = (catalog, copied)
        return cached[1]

    async def _dense(self, catalog: Catalog, vector: np.ndarray, mask: np.ndarray, search: Constraints,
                     limit: int) -> list[tuple[str, float]]:
        """Top ``limit`` by inner product within the filter: in process over the catalog's vectors (the same
        exact search as Milvus FLAT, ``mask`` = the filter), or in Milvus for a catalog above the limit."""
        copy = await self.catalog_vectors(catalog)
        if copy is not None:
            if len(copy) <= INLINE_SEARCH_MAX_ITEMS:  # well under a millisecond: no thread hop
                return copy.search(vector, mask, limit)
            return await anyio.to_thread.run_sync(copy.search, vector, mask, limit)
        expr = catalog_expr(catalog.name, milvus_filter(search, catalog.columns))
        return await anyio.to_thread.run_sync(
            lambda: dense.search(self.milvus, self.collection, vector.tolist(), expr, limit))

    def _bm25(self, catalog: Catalog, text: str, mask: np.ndarray, limit: int) -> dict[str, float]:
        tokens = tokenize(text)
        if not tokens:
            return {}
        scores = catalog.bm25.scores(tokens)
        scores = np.where(mask, scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        if positive.size > limit:
            positive = positive[np.argpartition(-scores[positive], limit - 1)[:limit]]
        return {catalog.items[n].item_id: float(scores[n]) for n in positive}

    def _model_match(self, catalog: Catalog, pool: list[int], fused: dict[str, float],
                     text: str) -> dict[str, float]:
        """Lexical precision on the model name: the share of an item's model tokens the query names, so
        "hot 10" puts the Hot 10 above the Hot 10 Play that BM25 scores almost the same; and the same
        series ("Note 11S" → the Note phones before the Hot 11S), which shoppers take as the nearer miss."""
        query = set(tokenize(text))
        series = model_series(text)
        out = dict(fused)
        for n in pool:
            model = catalog.model_tokens[n]
            bonus = 0.0
            if model and query & model:
                bonus += MODEL_MATCH_WEIGHT * len(query & model) / len(model)
            if series and catalog.series[n] == series:
                bonus += SERIES_MATCH_WEIGHT
            if bonus:
                item_id = catalog.items[n].item_id
                out[item_id] = out.get(item_id, 0.0) + bonus
        return out

    def _pool(self, catalog: Catalog, parsed: ParsedQuery, c: Constraints, mask: np.ndarray,
              fused: dict[str, float], limit: int) -> list[int]:
        """The candidates to order: what the searches found; with a query that only states constraints,
        the whole filtered set (so "cheapest …" is the cheapest of all, not of the nearest 400)."""
        index_of = catalog.index_of
        found = [index_of[i] for i in fused if i in index_of and mask[index_of[i]]]
        if parsed.informative and found:
            return found
        everything = np.flatnonzero(mask)
        if everything.size > limit * 4 and c.sort != "relevance":
            key = np.array([_order_key(c.sort, catalog, n) for n in everything])
            everything = everything[np.argsort(key, kind="stable")[:limit * 4]]
        return sorted(set(found) | set(everything.tolist()))

    def _relax(self, catalog: Catalog, c: Constraints, k: int, group_variants: bool
               ) -> tuple[np.ndarray, np.ndarray, Constraints, list[str]]:
        """The items to search: those meeting ``c``; when they make fewer than ``k`` results, the first step of
        the relaxation ladder that makes ``k`` (or its last step). Returns the mask, each item's tier (the step
        at which it first matched: 0 = strictly), the constraints searched and the fields relaxed."""
        mask = catalog.mask(c)
        tier = np.where(mask, 0, np.iinfo(np.int32).max)
        searched, relaxed = c, []
        for level, (looser, fields) in enumerate(relaxations(c), start=1):
            if catalog.results(mask, group_variants) >= k:
                break
            mask = catalog.mask(looser)
            tier = np.where(mask & (tier > level), level, tier)
            searched, relaxed = looser, fields
        return mask, tier, searched, relaxed

    def _order(self, catalog: Catalog, pool: list[int], fused: dict[str, float], parsed: ParsedQuery,
               c: Constraints, tier: np.ndarray) -> list[int]:
        prefer = parsed.prefer

        def key(n: int) -> tuple[float, ...]:
            item = catalog.items[n]
            misses = sum(1 for name, value in prefer.items() if getattr(item, name) != value)
            relevance = fused.get(item.item_id, 0.0)
            if parsed.prefer_discount and c.sort == "relevance":
                relevance += (item.discount_pct or 0.0) / 100
            rating = 0.0 if item.rating is None else item.rating
            # strict matches first, then each relaxation step in turn
            return (int(tier[n]), misses, _order_key(c.sort, catalog, n), -relevance, -rating, n)

        return sorted(pool, key=key)

    def _group(self, catalog: Catalog, ordered: list[int], mask: np.ndarray, k: int,
               group_variants: bool) -> list[tuple[int, list[int]]]:
        out: list[tuple[int, list[int]]] = []
        seen: set[str] = set()
        for n in ordered:
            if len(out) >= k:
                break
            item = catalog.items[n]
            if not group_variants:
                out.append((n, []))
                continue
            if item.group_id in seen:
                continue
            seen.add(item.group_id)
            variants = [v for v in catalog.groups[item.group_id] if v != n and mask[v]]
            out.append((n, variants))
        return out

    async def similar(self, item_id: str, k: int,
                      catalog_name: str | None = None) -> list[tuple[int, float, list[int]]]:
        """Nearest neighbours of an item by embedding within its catalog, excluding its own variants (same
        group)."""
        catalog = self.catalog_for(catalog_name)
        n = catalog.index_of[item_id]
        group_id = catalog.items[n].group_id
        vector = await anyio.to_thread.run_sync(dense.vector_of, self.milvus, self.collection, item_id)
        if vector is None:
            return []
        expr = catalog_expr(catalog.name, f"group_id != {json.dumps(group_id)}")
        hits = await anyio.to_thread.run_sync(
            lambda: dense.search(self.milvus, self.collection, vector, expr, k * 4))
        out: list[tuple[int, float, list[int]]] = []
        seen: set[str] = set()
        for hit_id, score in hits:
            m = catalog.index_of.get(hit_id)
            if m is None or catalog.items[m].group_id in seen:
                continue
            seen.add(catalog.items[m].group_id)
            out.append((m, score, [v for v in catalog.groups[catalog.items[m].group_id] if v != m]))
            if len(out) >= k:
                break
        return out


def _ranked(scores: dict[str, float]) -> list[str]:
    return [k for k, _ in sorted(scores.items(), key=lambda kv: -kv[1])]


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
