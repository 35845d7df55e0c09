"""The reranking pipeline: cross-encoder -> learned ranker -> behaviour boost -> final order.

Each stage is optional: without a cross-encoder or a ranker model the base score falls back to the next
stage (ultimately the retriever's fused score); without Redis there is no boost and the response says
``features_available: false``. Never an error for a missing stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

from pickwise_common.schemas import BoostDetail, Candidate, RankedItem, RerankRequest, RerankResponse
from pickwise_common.telemetry import stage
from pickwise_reranker.behaviour_boost import BoostWeights, GroupCache, UserSignals, compute_boosts, fetch_signals
from pickwise_reranker.cross_encoder import CrossEncoderScorer
from pickwise_reranker.served_rankers import RankerSlots

log = logging.getLogger("pickwise.reranker")

SERVICE = "reranker"
MIN_BASE = 1e-6
RANKER_FLOOR = 0.1

REQUESTS_BY_MODEL = Counter(
    "pickwise_reranker_requests_by_model_total",
    "Rerank requests by the ranker alias that answered and its version ('none': no learned ranker loaded; "
    "a version held back by its gate still counts under its version)", ["alias", "version"])


def rescale(scores: Sequence[float], floor: float = RANKER_FLOOR) -> list[float]:
    """Ranker scores (unbounded, only their order within a query means something) mapped per query onto
    ``[floor, 1]``: the best candidate gets 1, the worst ``floor``, so a boost multiplier compares like with
    like from query to query (a sigmoid would saturate: scores of 5 and 7 both become ~1)."""
    if not scores:
        return []
    lo, hi = min(scores), max(scores)
    if hi - lo <= 1e-12:
        return [1.0] * len(scores)
    return [floor + (1 - floor) * (s - lo) / (hi - lo) for s in scores]


def combine_base(fused: Sequence[float], ce: Sequence[float] | None, ranker: Sequence[float] | None,
                 ce_weight: float) -> list[float]:
    """The positive base score each candidate's boost multiplies.

    Without a cross-encoder or a ranker the base is the retriever's order itself: fused scores lifted so
    they never increase down the list (decision 1003c). The retriever orders by more than the fused score
    (relaxation step, named RAM/storage, model groups), so raw fused scores would re-sort its list."""
    n = len(fused)
    if ranker is not None:
        base = rescale(ranker)
        if ce is not None:
            base = [(1 - ce_weight) * b + ce_weight * c for b, c in zip(base, ce, strict=True)]
    elif ce is not None:
        base = list(ce)
    else:
        base = retrieval_order_scores(fused)
    return [max(MIN_BASE, b) for b in base[:n]]


def retrieval_order_scores(fused: Sequence[float]) -> list[float]:
    """Each fused score raised to the highest score below it in the list: non-increasing in list order."""
    out = [max(MIN_BASE, float(f)) for f in fused]
    for i in range(len(out) - 2, -1, -1):
        out[i] = max(out[i], out[i + 1])
    return out


def order(candidates: Sequence[Candidate], base: Sequence[float], boosts: Sequence[BoostDetail],
          keep_retrieval_order: bool = False) -> list[int]:
    """Indices by final score, descending; ties keep retrieval order. A query that asked for an order
    ('cheapest', 'top rated') keeps the retriever's, which already applied it: no score re-sorts it."""
    if keep_retrieval_order:
        return list(range(len(candidates)))
    finals = [b * d.multiplier for b, d in zip(base, boosts, strict=True)]
    return sorted(range(len(candidates)), key=lambda i: (-finals[i], i))


def asks_for_order(parsed: object) -> bool:
    """The query stated a sort ('cheapest', 'best rated'): its parse carries a sort other than relevance."""
    return getattr(parsed, "sort", "relevance") != "relevance"


@dataclass
class Reranker:
    weights: BoostWeights
    ce_weight: float = 0.5
    cross_encoder: CrossEncoderScorer | None = None
    rankers: RankerSlots = field(default_factory=RankerSlots)
    redis: aioredis.Redis | None = None
    groups: GroupCache = field(default_factory=GroupCache)

    async def rerank(self, request: RerankRequest) -> RerankResponse:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        cands = request.candidates
        ce_scores: list[float] | None = None
        ranker_scores: list[float] | None = None
        scorer = self.cross_encoder
        served = self.rankers.pick(request.ranker_alias)  # a reload mid-request does not mix models
        # a ranker that did not beat retrieval order on its validation split (its gate) leaves the base alone
        ranker = served.model if served is not None and served.gate.passed else None
        REQUESTS_BY_MODEL.labels(served.alias if served else request.ranker_alias,
                                 served.metric_version if served else "none").inc()
        if scorer is not None and cands:
            t = time.perf_counter()
            with stage(SERVICE, "cross_encoder", model=scorer.name, candidates=len(cands)):
                items = [c.item for c in cands]
                ce_scores = await anyio.to_thread.run_sync(scorer.score, request.query, items)
            timings["cross_encoder"] = _ms(t)
        if ranker is not None and cands:
            t = time.perf_counter()
            with stage(SERVICE, "ranker", model=ranker.name, candidates=len(cands)):
                ranker_scores = await anyio.to_thread.run_sync(ranker.score, cands, request.parsed)
            timings["ranker"] = _ms(t)
        base = combine_base([c.fused_score for c in cands], ce_scores, ranker_scores, self.ce_weight)

        t = time.perf_counter()
        features_available = True
        with stage(SERVICE, "behaviour_boost", user=bool(request.user_id)) as span:
            try:
                if self.redis is None:
                    raise RedisError("no Redis client")
                signals = await fetch_signals(self.redis, request.user_id, cands, self.groups,
                                              half_life_h=self.weights.half_life_h, catalog=request.catalog)
                boosts = compute_boosts(cands, signals, self.weights)
            except (RedisError, OSError) as exc:
                features_available = False
                span.set_attribute("features_available", False)
                log.warning("behaviour features unavailable: %s", exc)
                boosts = compute_boosts(cands, UserSignals(), BoostWeights(0.0, 0.0, 0.0, 1.0))
        timings["features"] = _ms(t)

        ranked = []
        for rank, i in enumerate(order(cands, base, boosts, asks_for_order(request.parsed))[:request.k], start=1):
            cand = cands[i]
            ranked.append(RankedItem(
                item=cand.item, score=round(base[i] * boosts[i].multiplier, 6), rank=rank,
                cross_encoder_score=None if ce_scores is None else round(ce_scores[i], 6),
                ranker_score=None if ranker_scores is None else round(ranker_scores[i], 6),
                base_score=round(base[i], 6), boost=boosts[i] if request.explain else None,
                variant_ids=cand.variant_ids))
        timings["total"] = _ms(started)
        return RerankResponse(items=ranked, cross_encoder=scorer.name if scorer else None,
                              ranker=ranker.name if ranker else None,
                              ranker_version=served.label if served else None,
                              features_available=features_available, timings_ms=timings)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
