"""The retrieval pipeline: parse → merge constraints → BM25 and dense search inside the filtered set →
fusion → ordering (sort intent, exact RAM/storage the shopper named) → variant grouping. Every request is
served from one catalog (``RetrieveRequest.catalog``): its in-memory ``Catalog`` and its Milvus rows."""

from __future__ import annotations

import json
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
from pickwise_retriever import dense, fusion, ordering, vectors
from pickwise_retriever.catalog import Catalog, model_series
from pickwise_retriever.facets import facet_counts
from pickwise_retriever.query_parser import ParsedQuery, merge_filters, parse_free_text, parse_query, refine

SERVICE = "retriever"
MODEL_MATCH_WEIGHT = 0.2
SERIES_MATCH_WEIGHT = 0.1
INLINE_SEARCH_MAX_ITEMS = 20_000  # in-process dense search on the event loop up to this catalog size
ORDER_HEAD_MIN = 64  # rows put in order first when only the first k results are needed from a larger pool
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

        bm25_scores = dense_scores = fusion.Scores.empty()
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
                dense_scores = await self._dense(catalog, vector, mask, search, pool)
            timings["dense"] = _ms(t)

        t = time.perf_counter()
        with stage(SERVICE, "fuse"):
            if request.mode == "bm25":
                fused = fusion.min_max(bm25_scores)
            elif request.mode == "dense":
                fused = fusion.min_max(dense_scores)
            elif request.fusion == "rrf":
                fused = fusion.rrf([bm25_scores.ranked(), dense_scores.ranked()])
            else:
                fused = fusion.weighted(bm25_scores, dense_scores, request.alpha)
            candidates = self._pool(catalog, parsed, c, mask, fused, pool)
            # every item's fused score (0 where neither search found it), so the pool's are one gather away
            relevance = np.zeros(len(catalog))
            relevance[fused.rows] = fused.values
            if request.mode != "dense" and parsed.informative:
                self._model_match(catalog, candidates, relevance, parsed.text)

            def keys(rows: np.ndarray) -> list[np.ndarray]:
                return self._order_keys(catalog, rows, relevance, parsed, c, tier)

            groups = self._first_groups(catalog, candidates, keys, mask, request.k, request.group_variants)
        timings["fuse"] = _ms(t)
        t = time.perf_counter()
        response.facets = facet_counts(catalog.items, candidates, currency=catalog.currency,
                                       order=lambda rows: ordering.first(rows, keys(rows), rows.size))
        timings["facets"] = _ms(t)

        t = time.perf_counter()
        with stage(SERVICE, "popularity"):
            pop = await popularity([catalog.items[n].item_id for n, _ in groups])
        timings["popularity"] = _ms(t)
        bm25_of = dict(zip(bm25_scores.rows.tolist(), bm25_scores.values.tolist(), strict=True))
        dense_of = dict(zip(dense_scores.rows.tolist(), dense_scores.values.tolist(), strict=True))
        for n, variants in groups:
            item = catalog.items[n]
            response.candidates.append(Candidate(
                item=item, bm25_score=bm25_of.get(n), dense_score=dense_of.get(n),
                fused_score=round(float(relevance[n]), 6), satisfies=satisfies(item, c),
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
                     limit: int) -> fusion.Scores:
        """Top ``limit`` rows by inner product within the filter, best first: in process over the catalog's
        vectors (the same exact search as Milvus FLAT, ``mask`` = the filter), or in Milvus for a catalog above
        the limit (hits of ids the loaded catalog lacks are dropped)."""
        copy = await self.catalog_vectors(catalog)
        if copy is not None:
            if len(copy) <= INLINE_SEARCH_MAX_ITEMS:  # well under a millisecond: no thread hop
                return fusion.Scores(*copy.search_rows(vector, mask, limit))
            return fusion.Scores(*await anyio.to_thread.run_sync(copy.search_rows, vector, mask, limit))
        expr = catalog_expr(catalog.name, milvus_filter(search, catalog.columns))
        hits = await anyio.to_thread.run_sync(
            lambda: dense.search(self.milvus, self.collection, vector.tolist(), expr, limit))
        known = [(catalog.index_of[item_id], score) for item_id, score in hits if item_id in catalog.index_of]
        return fusion.Scores(np.array([n for n, _ in known], dtype=np.int64),
                             np.array([score for _, score in known], dtype=np.float64))

    def _bm25(self, catalog: Catalog, text: str, mask: np.ndarray, limit: int) -> fusion.Scores:
        tokens = tokenize(text)
        if not tokens:
            return fusion.Scores.empty()
        scores = catalog.bm25.scores(tokens)
        scores = np.where(mask, scores, 0.0)
        positive = np.flatnonzero(scores > 0)
        if positive.size > limit:
            positive = positive[np.argpartition(-scores[positive], limit - 1)[:limit]]
        return fusion.Scores(positive.astype(np.int64), scores[positive].astype(np.float64))

    def _model_match(self, catalog: Catalog, pool: np.ndarray, relevance: np.ndarray, text: str) -> None:
        """Lexical precision on the model name: the share of an item's model tokens the query names, so
        "hot 10" puts the Hot 10 above the Hot 10 Play that BM25 scores almost the same; and the same
        series ("Note 11S" → the Note phones before the Hot 11S), which shoppers take as the nearer miss.
        Adds each pool item's bonus to ``relevance`` (indexed by catalog row) in place."""
        bonus = np.zeros(pool.size)
        postings = [rows for token in set(tokenize(text)) if (rows := catalog.model_postings.get(token)) is not None]
        if postings:
            named = np.zeros(len(catalog), dtype=np.int64)  # per item: how many of its model tokens the query names
            for rows in postings:
                named[rows] += 1
            shared, size = named[pool], catalog.model_size[pool]
            hit = shared > 0
            bonus[hit] = MODEL_MATCH_WEIGHT * shared[hit] / size[hit]
        series = model_series(text)
        code = catalog.series_codes.get(series) if series else None
        if code is not None:
            bonus[catalog.series_code[pool] == code] += SERIES_MATCH_WEIGHT
        given = bonus != 0
        relevance[pool[given]] += bonus[given]

    def _pool(self, catalog: Catalog, parsed: ParsedQuery, c: Constraints, mask: np.ndarray,
              fused: fusion.Scores, limit: int) -> np.ndarray:
        """The candidates to order (catalog rows, distinct): what the searches found; with a query that only
        states constraints, the whole filtered set (so "cheapest …" is the cheapest of all, not of the nearest
        400)."""
        found = fused.rows[mask[fused.rows]]
        if parsed.informative and found.size:
            return found
        everything = np.flatnonzero(mask)
        if everything.size > limit * 4 and c.sort != "relevance":
            everything = ordering.first(everything, [catalog.sort_key[c.sort][everything]], limit * 4)
        return np.union1d(found, everything)

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

    def _order_keys(self, catalog: Catalog, rows: np.ndarray, relevance: np.ndarray, parsed: ParsedQuery,
                    c: Constraints, tier: np.ndarray) -> list[np.ndarray]:
        """The ordering of results as key arrays over ``rows``, primary first (then the row number): the
        relaxation step an item first matched at (strict matches first) and how many of the exact RAM/storage
        the shopper named it misses, the sort intent, relevance (plus the discount when the shopper asked for
        one), rating (unknown = 0)."""
        misses = np.zeros(rows.size, dtype=np.int64)
        for name, value in parsed.prefer.items():
            column = catalog.columns.numbers.get(name)
            if column is not None:
                misses += column[rows] != value  # an unknown (nan) size misses
            else:
                misses += np.fromiter((getattr(catalog.items[n], name) != value for n in rows.tolist()),
                                      dtype=bool, count=rows.size)
        keys = [tier[rows].astype(np.int64) * (len(parsed.prefer) + 1) + misses]
        if c.sort in catalog.sort_key:
            keys.append(catalog.sort_key[c.sort][rows])
        score = relevance[rows]
        if parsed.prefer_discount and c.sort == "relevance":
            score = score + catalog.discount_pct[rows] / 100
        return [*keys, -score, -catalog.rating_or_zero[rows]]

    def _first_groups(self, catalog: Catalog, pool: np.ndarray, keys: Callable[[np.ndarray], list[np.ndarray]],
                      mask: np.ndarray, k: int, group_variants: bool) -> list[tuple[int, list[int]]]:
        """The first ``k`` results of the ordered pool: only a head of the order is sorted, made longer until it
        holds ``k`` models (or is the whole pool)."""
        pool_keys = keys(pool)
        head = min(pool.size, max(ORDER_HEAD_MIN, 4 * k))
        while True:
            groups = self._group(catalog, ordering.first(pool, pool_keys, head).tolist(), mask, k, group_variants)
            if len(groups) >= k or head >= pool.size:
                return groups
            head = min(pool.size, head * 4)

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


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
