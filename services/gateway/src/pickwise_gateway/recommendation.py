"""The request path of ``POST /v1/recommendations`` (DESIGN §3, §5): session → retriever → reranker →
generator, each hop with its own time budget inside a total budget, and a degraded answer (with the
reason) whenever a hop the answer can live without fails."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import Counter
from pydantic import Field, ValidationError

from pickwise_common import admission
from pickwise_common import redis as rd
from pickwise_common.catalogs import DEFAULT_CATALOG, catalog_spec
from pickwise_common.constraints import canonical_filters
from pickwise_common.errors import DependencyUnavailable, InvalidInput, NotFound
from pickwise_common.http import DownstreamError, ServiceClient
from pickwise_common.metrics import DEGRADATIONS
from pickwise_common.public_api import RecommendationRequest, RecommendationResponse, ResultItem, Scores
from pickwise_common.schemas import (
    Answer,
    Candidate,
    Constraints,
    GenerateRequest,
    Item,
    Open,
    ParsedQuery,
    RankedItem,
    RerankRequest,
    RerankResponse,
    RetrieveRequest,
    RetrieveResponse,
    Turn,
)
from pickwise_common.telemetry import current_trace_id, stage
from pickwise_gateway import answer as answers
from pickwise_gateway import exploration, interleaving, overshown, popularity
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.exploration import RandPair
from pickwise_gateway.ttl_cache import TTLCache
from pickwise_gateway.variants import CHALLENGER, Variant

log = logging.getLogger("pickwise.gateway.recommendation")
T = TypeVar("T")

RESPONSES = Counter("pickwise_gateway_recommendations_total", "Recommendation/search responses served",
                    ["endpoint", "variant", "degraded"])
CACHE_LOOKUPS = Counter("pickwise_gateway_cache_lookups_total", "In-process cache lookups, by cache and outcome",
                        ["cache", "outcome"])
DROPPED_CITATIONS = Counter("pickwise_gateway_dropped_citations_total",
                            "Picks in a generated answer that cited an item not in the result list")

HISTORY_TURNS = 5
# what a hop leaves for the hops after it when the total budget runs short
RESERVE_AFTER_RETRIEVE_MS = 150.0
# the client's own timeout fires first; this only catches what it cannot (a slow trickle of bytes)
HARD_DEADLINE_SLACK_S = 0.02
# how long the last fetched popularity list may stand in when a fresh fetch fails
STALE_POPULARITY_S = 600.0
# failures of a downstream that the answer can live without
# what a downstream can do wrong: unreachable, an error answer, or a body that breaks the contract. Our own
# bugs (TypeError, AttributeError, a ValueError of our code) are not in it: they surface as 500s.
UNAVAILABLE = (DependencyUnavailable, DownstreamError, ValidationError)


class SessionTurns(Open):
    """The part of the session service's ``GET /v1/sessions/{id}`` the gateway reads."""

    turns: list[Turn] = Field(default_factory=list)


class Budget:
    """The total time budget of one request; each hop gets ``min(its own budget, what is left)``."""

    def __init__(self, total_ms: float, *, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.deadline = clock() + total_ms / 1000.0

    def remaining_ms(self) -> float:
        return max(0.0, (self.deadline - self.clock()) * 1000.0)

    def hop_ms(self, hop_budget_ms: float, *, reserve_ms: float = 0.0) -> float:
        return max(0.0, min(hop_budget_ms, self.remaining_ms() - reserve_ms))


@dataclass
class Outcome:
    """What the orchestration produced, before it becomes the wire response."""

    items: list[ResultItem]
    parsed: ParsedQuery
    answer: Answer | None
    reasons: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    history: list[Turn] = field(default_factory=list)
    index: dict[str, Item] = field(default_factory=dict)  # full items by id, for the generator
    variant_name: str = ""
    model_versions: dict[str, str] = field(default_factory=dict)
    teams: list[str] = field(default_factory=list)  # team-draft interleaving: "A"/"B" per shown position
    explore: RandPair | None = None

    def degrade(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
            DEGRADATIONS.labels("gateway", reason).inc()


async def _within(call: Awaitable[T], budget_ms: float, dependency: str) -> T:
    """A hard wall-clock bound on one hop (httpx's timeouts are per socket operation, not per call)."""
    try:
        return await asyncio.wait_for(call, budget_ms / 1000.0 + HARD_DEADLINE_SLACK_S)
    except TimeoutError as exc:
        raise DependencyUnavailable(f"{dependency} did not answer within {budget_ms:.0f} ms",
                                    dependency=dependency) from exc


def _relaxed_on_page(retrieved: RetrieveResponse, shown: list[ResultItem]) -> ParsedQuery:
    """The retriever relaxes to fill its candidate pool; the page names a relaxation only when it shows an item
    that does not meet every constraint (decision 0732)."""
    parsed = retrieved.parsed
    if not parsed.relaxed:
        return parsed
    strict = {c.item.item_id for c in retrieved.candidates if all(c.satisfies.values())}
    if all(item.item_id in strict for item in shown):
        return parsed.model_copy(update={"relaxed": []})
    return parsed


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 2)


def result_item(item: Item, *, score: float, rank: int, variant_ids: list[str], explain: bool,
                scores: Scores | None = None, ranked: RankedItem | None = None,
                satisfies: dict[str, bool] | None = None) -> ResultItem:
    return ResultItem(
        item_id=item.item_id, catalog=item.catalog, title=item.title, brand=item.brand, model=item.model,
        category=item.category, color=item.color, ram_gb=item.ram_gb, storage_gb=item.storage_gb,
        price=item.price if item.price is not None else (item.price_inr or 0.0), currency=item.currency,
        price_inr=item.price_inr,
        original_price_inr=item.original_price_inr, discount_pct=item.discount_pct, rating=item.rating,
        price_band=item.price_band, variant_ids=variant_ids, score=round(score, 6), rank=rank,
        scores=scores if explain else None, boost=ranked.boost if (explain and ranked is not None) else None,
        satisfies=satisfies if explain else None)


def _candidate_scores(candidate: Candidate) -> Scores:
    return Scores(bm25=candidate.bm25_score, dense=candidate.dense_score, fused=candidate.fused_score,
                  popularity=candidate.popularity)


class Recommender:
    def __init__(self, settings: GatewaySettings, clients: dict[str, ServiceClient], redis: Any | None) -> None:
        self.settings = settings
        self.clients = clients
        self.redis = redis
        # the retriever's answers as the bytes it sent, parsed again on a hit (about half a millisecond): as
        # objects, 2,048 answers of 50 candidates are millions of objects the garbage collector walks on every
        # full collection, which stalled the event loop for ~400 ms every few seconds under load
        self.retrievals: TTLCache[bytes] = TTLCache(settings.retrieval_cache_size, settings.retrieval_cache_ttl_s)
        self.popular: TTLCache[tuple[list[tuple[Item, float]], str]] = TTLCache(256, settings.popularity_cache_ttl_s)
        # the last popularity lists that were fetched, served when a fresh fetch fails or finds no time left
        # (overload: the retriever shed the request and the budget is nearly spent), instead of a 503
        self.popular_stale: TTLCache[tuple[list[tuple[Item, float]], str]] = TTLCache(256, STALE_POPULARITY_S)

    async def recommend(self, request: RecommendationRequest, *, request_id: str, variant: Variant,
                        endpoint: str = "recommendations") -> RecommendationResponse:
        response, _ = await self.serve(request, request_id=request_id, variant=variant, endpoint=endpoint)
        return response

    async def serve(self, request: RecommendationRequest, *, request_id: str, variant: Variant,
                    endpoint: str = "recommendations") -> tuple[RecommendationResponse, Outcome]:
        """The response, and the outcome it came from (exploration and interleaving teams for the impression)."""
        # explicit filters read like parsed ones ('samsung' → Samsung), or a 422 naming the value: bad input
        # never reaches the retriever (where it could only fail) nor the popularity fallback
        request = request.model_copy(update={"filters": canonical_filters(request.filters)})
        # the time this request waited for admission is part of its budget (decision 0755)
        budget = Budget(self.settings.total_budget_ms - admission.queued_ms())
        started = time.perf_counter()
        outcome = Outcome(items=[], parsed=ParsedQuery(**(request.filters or Constraints()).model_dump()),
                          answer=None, variant_name=variant.name)

        previous = await self._session(request, budget, outcome)
        retrieved = await self._retrieve(request, variant, previous, budget, outcome)
        if retrieved is not None:
            outcome.parsed = retrieved.parsed
            outcome.index.update({c.item.item_id: c.item for c in retrieved.candidates})
            await self._rerank(request, await self._unshown(request, retrieved, outcome), variant, budget, outcome,
                               request_id=request_id)
            outcome.parsed = _relaxed_on_page(retrieved, outcome.items)
        # an explain response must explain the order it shows, and an interleaved one keeps its draft: neither
        # is explored (decision 1004)
        if not outcome.teams and not request.explain:
            outcome.explore = exploration.rand_pair(request_id, len(outcome.items), self.settings.exploration_share)
            outcome.items = exploration.apply(outcome.items, outcome.explore)
            for rank, shown in enumerate(outcome.items, start=1):
                shown.rank = rank
        if request.generate:
            await self._generate(request, budget, outcome)

        outcome.timings_ms["total"] = _ms(started)
        RESPONSES.labels(endpoint, outcome.variant_name, str(bool(outcome.reasons)).lower()).inc()
        return RecommendationResponse(
            request_id=request_id, trace_id=current_trace_id(), catalog=_catalog(request), query=request.query,
            items=outcome.items, parsed=outcome.parsed, answer=outcome.answer, variant=outcome.variant_name,
            model_versions=outcome.model_versions, degraded=bool(outcome.reasons),
            degradation_reasons=outcome.reasons, timings_ms=outcome.timings_ms,
            facets=retrieved.facets if retrieved is not None else {}), outcome

    async def _unshown(self, request: RecommendationRequest, retrieved: RetrieveResponse,
                       outcome: Outcome) -> RetrieveResponse:
        """The candidates without the user's dismissed and over-shown items (decision 1001); the retrieved
        answer itself (shared with the retrieval cache) is left as it is."""
        if not request.user_id or not retrieved.candidates or self.redis is None:
            return retrieved
        start = time.perf_counter()
        ids = [c.item.item_id for c in retrieved.candidates]
        state = await overshown.shown_state(self.redis, request.user_id, _catalog(request), ids,
                                            budget_ms=self.settings.overshown_budget_ms)
        outcome.timings_ms["overshown"] = _ms(start)
        if state is None:
            return retrieved
        kept = set(overshown.keep(ids, state, threshold=self.settings.overshown_after, k=request.k))
        if len(kept) == len(ids):
            return retrieved
        return retrieved.model_copy(update={"candidates": [c for c in retrieved.candidates
                                                           if c.item.item_id in kept]})

    # ---------------------------------------------------------------- hops

    async def _session(self, request: RecommendationRequest, budget: Budget, outcome: Outcome) -> Constraints | None:
        """Recent turns of the session (budget 50 ms); skipped on failure. Returns the previous turn's
        constraints for refinement ("cheaper", "with more storage")."""
        if not request.session_id:
            return None
        start = time.perf_counter()
        with stage("gateway", "session"):
            try:
                hop_ms = budget.hop_ms(self.settings.session_budget_ms)
                body = await _within(self.clients["session"].get_json(
                    f"/v1/sessions/{request.session_id}", timeout_ms=hop_ms), hop_ms, "session")
                turns = SessionTurns.model_validate(body).turns[-HISTORY_TURNS:]
            except NotFound:
                turns = []
            except UNAVAILABLE as exc:
                log.info("session unavailable: %s", exc)
                outcome.degrade("session_unavailable")
                turns = []
        outcome.timings_ms["session"] = _ms(start)
        outcome.history = turns
        if turns and turns[-1].parsed:
            try:
                # a stored turn's parsed also says what was relaxed or corrected: only the constraints carry over
                return Constraints.model_validate({k: v for k, v in turns[-1].parsed.items()
                                                  if k in Constraints.model_fields})
            except ValidationError:
                return None
        return None

    async def _retrieve(self, request: RecommendationRequest, variant: Variant, previous: Constraints | None,
                        budget: Budget, outcome: Outcome) -> RetrieveResponse | None:
        body = RetrieveRequest(query=request.query, catalog=_catalog(request),
                               k=max(self.settings.retrieve_candidates, request.k),
                               fusion=variant.fusion, alpha=variant.alpha, filters=request.filters,
                               previous=previous)
        start = time.perf_counter()
        cache_key = body.model_dump_json(exclude_none=True)
        cached = self.retrievals.get(cache_key)
        if self.retrievals.enabled:
            CACHE_LOOKUPS.labels("retrieval", "hit" if cached is not None else "miss").inc()
        if cached is not None:
            retrieved = RetrieveResponse.model_validate_json(cached)
            outcome.timings_ms["retrieve"] = _ms(start)
            return retrieved
        with stage("gateway", "retrieve"):
            try:
                hop_ms = budget.hop_ms(self.settings.retriever_budget_ms, reserve_ms=RESERVE_AFTER_RETRIEVE_MS)
                raw = await _within(self.clients["retriever"].request(
                    "POST", "/v1/retrieve", content=body.model_dump_json(exclude_none=True).encode(),
                    timeout_ms=hop_ms, idempotent=True), hop_ms, "retriever")
                retrieved = RetrieveResponse.model_validate_json(raw.content)
                self.retrievals.put(cache_key, raw.content)
            except DownstreamError as exc:
                if 400 <= exc.status_code < 500 and exc.status_code not in (408, 429):
                    # the retriever rejected what the client asked for: the client should hear why
                    raise InvalidInput(f"retriever rejected the request: {exc}",
                                       fields=_error_fields(exc.body)) from exc
                retrieved = None
                log.warning("retriever failed: %s", exc)
            except UNAVAILABLE as exc:
                retrieved = None
                log.warning("retriever unavailable: %s", exc)
        outcome.timings_ms["retrieve"] = _ms(start)
        if retrieved is not None:
            for name, value in retrieved.timings_ms.items():
                outcome.timings_ms[f"retrieve.{name}"] = value
            return retrieved
        outcome.degrade("retriever_unavailable")
        await self._popular(request, budget, outcome)
        return None

    async def _popular(self, request: RecommendationRequest, budget: Budget, outcome: Outcome) -> None:
        start = time.perf_counter()
        with stage("gateway", "popularity_fallback"):
            if self.redis is None:
                raise DependencyUnavailable("retriever unavailable and no Redis for the popularity fallback",
                                            dependency="retriever")
            catalog = _catalog(request)
            key = (catalog, request.k, request.filters.model_dump_json() if request.filters else "")
            cached = self.popular.get(key)
            try:
                if cached is None:
                    cached = await asyncio.wait_for(
                        popularity.popular_items(self.redis, request.k, filters=request.filters, catalog=catalog),
                        budget.hop_ms(self.settings.popularity_budget_ms) / 1000.0)
                    self.popular.put(key, cached)
                    self.popular_stale.put(key, cached)
                chosen, tier = cached
            except rd.REDIS_ERRORS as exc:
                stale = self.popular_stale.get(key)
                if stale is None:
                    raise DependencyUnavailable(f"retriever and the popularity fallback are unavailable: "
                                                f"{type(exc).__name__}", dependency="retriever") from exc
                log.info("popularity fallback from the last list fetched (%s)", type(exc).__name__)
                chosen, tier = stale
        outcome.timings_ms["popularity_fallback"] = _ms(start)
        log.info("popularity fallback from tier %s: %d items", tier, len(chosen))
        outcome.index.update({item.item_id: item for item, _ in chosen})
        outcome.items = [
            result_item(item, score=1.0 / rank, rank=rank, variant_ids=[], explain=request.explain,
                        scores=Scores(popularity=pop))
            for rank, (item, pop) in enumerate(chosen, start=1)]

    async def _rerank_call(self, body: RerankRequest, alias: str, hop_ms: float) -> RerankResponse | None:
        try:
            raw = await _within(self.clients["reranker"].request(
                "POST", "/v1/rerank", content=body.model_copy(update={"ranker_alias": alias})
                .model_dump_json(exclude_none=True).encode(), timeout_ms=hop_ms, idempotent=True), hop_ms, "reranker")
            return RerankResponse.model_validate_json(raw.content)
        except UNAVAILABLE as exc:
            log.warning("reranker (%s) unavailable: %s", alias, exc)
            return None

    async def _rerank(self, request: RecommendationRequest, retrieved: RetrieveResponse, variant: Variant,
                      budget: Budget, outcome: Outcome, *, request_id: str) -> None:
        candidates = retrieved.candidates
        if not candidates:
            return
        relaxed = bool(retrieved.parsed.relaxed)
        # with relaxed constraints, ask for every candidate back so the strict matches can lead (decision 0732)
        body = RerankRequest(query=request.query, catalog=_catalog(request), candidates=candidates,
                             parsed=Constraints(**retrieved.parsed.model_dump(include=set(Constraints.model_fields))),
                             user_id=request.user_id, k=min(len(candidates), 100) if relaxed else request.k,
                             explain=request.explain)
        start = time.perf_counter()
        reranked: RerankResponse | None = None
        challenger: RerankResponse | None = None
        with stage("gateway", "rerank"):
            hop_ms = budget.hop_ms(self.settings.reranker_budget_ms)
            if variant.interleaved:
                # both rankers score the same candidates at once; the page is their team draft (decision 1005)
                reranked, challenger = await asyncio.gather(self._rerank_call(body, "champion", hop_ms),
                                                            self._rerank_call(body, "challenger", hop_ms))
                if reranked is None or challenger is None:
                    # a side failed: the page is the other ranker's alone, labelled like that plain variant
                    outcome.variant_name = (CHALLENGER if reranked is None and challenger is not None
                                            else variant.base or variant.name)
                    reranked, challenger = reranked or challenger, None
            else:
                reranked = await self._rerank_call(body, variant.ranker_alias, hop_ms)
        outcome.timings_ms["rerank"] = _ms(start)
        by_id = {c.item.item_id: c for c in candidates}
        if reranked is None:
            outcome.degrade("reranker_unavailable")
            outcome.items = [
                result_item(c.item, score=c.fused_score, rank=rank, variant_ids=c.variant_ids,
                            explain=request.explain, scores=_candidate_scores(c), satisfies=c.satisfies)
                for rank, c in enumerate(candidates[:request.k], start=1)]
            return
        for name, value in reranked.timings_ms.items():
            outcome.timings_ms[f"rerank.{name}"] = value
        if not reranked.features_available:
            outcome.degrade("features_unavailable")
        if reranked.ranker_version is not None:
            outcome.model_versions["ranker"] = reranked.ranker_version
            if variant.name == CHALLENGER and not reranked.ranker_version.endswith("@challenger"):
                # no challenger is loaded: the champion scored, so this shopper saw the control variant
                outcome.variant_name = variant.base or outcome.variant_name
        ranked_items = reranked.items
        if challenger is not None:
            if challenger.ranker_version is not None:
                outcome.model_versions["ranker_b"] = challenger.ranker_version
            ranked_items, outcome.teams = _team_draft(ranked_items, challenger.items, request_id)
        if relaxed:
            strict = {c.item.item_id for c in candidates if all(c.satisfies.values())}
            order = sorted(range(len(ranked_items)), key=lambda i: ranked_items[i].item.item_id not in strict)
            ranked_items = [ranked_items[i] for i in order]
            if outcome.teams:
                outcome.teams = [outcome.teams[i] for i in order]
        outcome.teams = outcome.teams[:request.k]
        items = []
        for rank, ranked in enumerate(ranked_items[:request.k], start=1):
            candidate = by_id.get(ranked.item.item_id)
            scores = _candidate_scores(candidate) if candidate is not None else Scores()
            scores.cross_encoder = ranked.cross_encoder_score
            scores.ranker = ranked.ranker_score
            scores.base = ranked.base_score
            outcome.index.setdefault(ranked.item.item_id, ranked.item)
            items.append(result_item(ranked.item, score=ranked.score, rank=rank,
                                     variant_ids=ranked.variant_ids or (candidate.variant_ids if candidate else []),
                                     explain=request.explain, scores=scores, ranked=ranked,
                                     satisfies=candidate.satisfies if candidate is not None else None))
        outcome.items = items

    async def _generate(self, request: RecommendationRequest, budget: Budget, outcome: Outcome) -> None:
        shown = [_as_item(r, outcome.index) for r in outcome.items]
        start = time.perf_counter()
        answer: Answer | None = None
        with stage("gateway", "generate"):
            if not shown:
                answer = answers.template_answer(request.query, [], outcome.parsed, reason="no_results",
                                                 currency=_currency(request))
            else:
                hop_ms = budget.hop_ms(self.settings.generator_budget_ms)
                try:
                    if hop_ms <= 0:
                        raise DependencyUnavailable("no time left for the generator", dependency="generator")
                    body = GenerateRequest(query=request.query, catalog=_catalog(request), items=shown,
                                           history=outcome.history, parsed=outcome.parsed)
                    raw = await _within(self.clients["generator"].request(
                        "POST", "/v1/generate", content=body.model_dump_json(exclude_none=True).encode(),
                        timeout_ms=hop_ms, idempotent=False), hop_ms, "generator")
                    answer = Answer.model_validate_json(raw.content)
                except UNAVAILABLE as exc:
                    log.warning("generator unavailable: %s", exc)
                    outcome.degrade("generator_unavailable")
                    answer = answers.template_answer(request.query, shown, outcome.parsed,
                                                     reason="generator_unavailable", currency=_currency(request))
                else:
                    if answer.provider == "template":
                        outcome.degrade("llm_offline")
        outcome.timings_ms["generate"] = _ms(start)
        answer, dropped = answers.keep_cited(answer, [r.item_id for r in outcome.items])
        if dropped:
            DROPPED_CITATIONS.inc(len(dropped))
            log.warning("dropped %d cited ids not in the result list: %s", len(dropped), dropped[:5])
        outcome.answer = answer


def _team_draft(champion: list[RankedItem], challenger: list[RankedItem],
                request_id: str) -> tuple[list[RankedItem], list[str]]:
    """The two rankings merged by team draft (coin flips seeded by the request id), each item with the score its
    team's ranker gave it; and the team of each position."""
    by_team = {"A": {r.item.item_id: r for r in champion}, "B": {r.item.item_id: r for r in challenger}}
    rng = random.Random(hashlib.sha256(f"interleave:{request_id}".encode()).digest())
    page = interleaving.team_draft(list(by_team["A"]), list(by_team["B"]), len(by_team["A"] | by_team["B"]), rng)
    return [by_team[team][item_id] for item_id, team in page], [team for _, team in page]


def _as_item(result: ResultItem, index: dict[str, Item]) -> Item:
    known = index.get(result.item_id)
    if known is not None:
        return known
    return Item(item_id=result.item_id, catalog=result.catalog, title=result.title, brand=result.brand,
                model=result.model, category=result.category or "", color=result.color, ram_gb=result.ram_gb,
                storage_gb=result.storage_gb, price=result.price, currency=result.currency,
                price_inr=result.price_inr, original_price_inr=result.original_price_inr,
                discount_pct=result.discount_pct, rating=result.rating, price_band=result.price_band,
                group_id=result.item_id)


def _catalog(request: RecommendationRequest) -> str:
    """The request's catalog (the route resolved the API key's default into it)."""
    return request.catalog or DEFAULT_CATALOG


def _currency(request: RecommendationRequest) -> str:
    return catalog_spec(_catalog(request)).currency


def _error_fields(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        fields = body["error"].get("fields")
        if isinstance(fields, list):
            return [f for f in fields if isinstance(f, dict)]
    return []
