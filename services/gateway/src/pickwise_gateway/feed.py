"""The content feed of ``GET /v1/users/{user_id}/recommendations`` (route in users_api) for a catalog without
a CF model: items similar to the user's recent clicks (newest weigh most) nudged by their brand affinities,
minus what they already bought or dismissed, filled with recency-weighted popularity in their preferred
brands; a user with no history gets global popularity."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError

from pickwise_common import redis as rd
from pickwise_common.catalogs import DEFAULT_CATALOG
from pickwise_common.errors import DependencyUnavailable, NotFound
from pickwise_common.features import UserFeatures
from pickwise_common.http import DownstreamError, ServiceClient
from pickwise_common.public_api import FeedItem, FeedResponse
from pickwise_common.schemas import Candidate, Constraints, Item, Open
from pickwise_common.telemetry import stage
from pickwise_gateway import popularity

log = logging.getLogger("pickwise.gateway.feed")

SEED_CLICKS = 5            # recent clicks whose neighbours feed the list
SEED_DECAY = 0.6           # weight of the i-th most recent click: SEED_DECAY ** i
AFFINITY_WEIGHT = 0.3      # up to +30 % for an item of the user's strongest brand
PREFERRED_BRANDS = 3
SESSION_TIMEOUT_MS = 200
RETRIEVER_TIMEOUT_MS = 500
RETRIEVER_MAX_K = 100     # the retriever's list endpoints answer at most this many
FEED_DEGRADED = Counter("pickwise_gateway_feed_degraded_total", "Feeds served degraded, by reason", ["reason"])


class CandidateList(Open):
    """What the retriever's list endpoints (``/v1/items/{id}/similar``, ``/v1/popular``) answer."""

    candidates: list[Candidate]


def items_of(body: Any) -> list[Item]:
    """The items of a retriever list answer; a body that breaks the contract raises ``ValidationError``."""
    return [c.item for c in CandidateList.model_validate(body).candidates]


def brand_affinities(features: UserFeatures) -> list[tuple[str, float]]:
    """The user's brands, strongest first (from ``brand:<name>`` affinities)."""
    brands = [(key.split(":", 1)[1], score) for key, score in features.affinities.items()
              if key.startswith("brand:") and score > 0]
    return sorted(brands, key=lambda kv: (-kv[1], kv[0]))


def blend_similar(neighbours: list[tuple[str, list[Item]]], features: UserFeatures,
                  exclude: set[str]) -> list[FeedItem]:
    """Score neighbours: click recency × rank in the similar list × (1 + brand affinity share); one item per
    model (group), nothing the user bought or is using as a seed."""
    brands = dict(brand_affinities(features))
    top_brand = max(brands.values(), default=0.0)
    best: dict[str, FeedItem] = {}
    for seed_rank, (seed, items) in enumerate(neighbours):
        for rank, item in enumerate(items):
            if item.item_id in exclude or item.item_id == seed:
                continue
            affinity = brands.get(item.brand.strip().lower(), 0.0) / top_brand if top_brand else 0.0
            score = (SEED_DECAY ** seed_rank) / (1.0 + rank) * (1.0 + AFFINITY_WEIGHT * affinity)
            key = item.group_id or item.item_id
            current = best.get(key)
            if current is None:
                best[key] = FeedItem(item=item, score=round(score, 6), reason="similar", source_item_id=seed)
            else:
                current.score = round(current.score + score, 6)  # close to several clicks: more relevant
    return sorted(best.values(), key=lambda f: (-f.score, f.item.item_id))


def fill(feed: list[FeedItem], extra: Iterable[tuple[Item, float]], reason: str, exclude: set[str], k: int,
         floor: float) -> None:
    """Append items not yet present (by model) below the current scores, in the order given."""
    groups = {f.item.group_id or f.item.item_id for f in feed}
    for item, pop in extra:
        if len(feed) >= k:
            return
        key = item.group_id or item.item_id
        if item.item_id in exclude or key in groups:
            continue
        groups.add(key)
        feed.append(FeedItem(item=item, score=round(floor * (0.5 + 0.5 * pop), 6), reason=reason))


class _Feed:
    def __init__(self, redis: Any | None, clients: dict[str, ServiceClient], user_id: str, k: int,
                 catalog: str = DEFAULT_CATALOG) -> None:
        self.redis = redis
        self.clients = clients
        self.user_id = user_id
        self.k = k
        self.catalog = catalog
        self.reasons: list[str] = []
        self.timings: dict[str, float] = {}

    def degrade(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
            FEED_DEGRADED.labels(reason).inc()

    async def user(self) -> tuple[UserFeatures, set[str]]:
        session = self.clients["session"]
        start = time.perf_counter()
        with stage("gateway", "feed_user"):
            got = await asyncio.gather(
                session.get_json(f"/v1/users/{self.user_id}/features", params={"catalog": self.catalog},
                                 timeout_ms=SESSION_TIMEOUT_MS),
                session.get_json(f"/v1/users/{self.user_id}/events",
                                 params={"type": "purchase", "limit": 200, "catalog": self.catalog},
                                 timeout_ms=SESSION_TIMEOUT_MS),
                return_exceptions=True)
        self.timings["session"] = round((time.perf_counter() - start) * 1000, 2)
        features = UserFeatures(user_id=self.user_id)
        bought: set[str] = set()
        if isinstance(got[0], dict):
            try:
                features = UserFeatures.model_validate(got[0])
            except ValidationError:
                self.degrade("session_unavailable")
        elif not isinstance(got[0], NotFound):
            self.degrade("session_unavailable")
        if isinstance(got[1], dict):
            bought = {str(e.get("item_id")) for e in got[1].get("events", []) if isinstance(e, dict)}
        elif not isinstance(got[1], NotFound):
            self.degrade("session_unavailable")
        return features, bought

    async def similar(self, seeds: list[str]) -> list[tuple[str, list[Item]]]:
        retriever = self.clients["retriever"]
        start = time.perf_counter()
        with stage("gateway", "feed_similar"):
            got = await asyncio.gather(*(retriever.get_json(f"/v1/items/{seed}/similar",
                                                            params={"k": min(self.k * 2, RETRIEVER_MAX_K),
                                                                    "catalog": self.catalog},
                                                            timeout_ms=RETRIEVER_TIMEOUT_MS) for seed in seeds),
                                       return_exceptions=True)
        self.timings["similar"] = round((time.perf_counter() - start) * 1000, 2)
        out = []
        for seed, body in zip(seeds, got, strict=True):
            if isinstance(body, (DependencyUnavailable, DownstreamError)) and not isinstance(body, NotFound):
                self.degrade("retriever_unavailable")
            elif isinstance(body, BaseException) and not isinstance(body, NotFound):
                raise body
            elif not isinstance(body, BaseException):
                try:
                    out.append((seed, items_of(body)))
                except ValidationError:
                    self.degrade("retriever_unavailable")
        return out

    async def popular(self, n: int, brands: list[str] | None = None) -> list[tuple[Item, float]]:
        """Brand-restricted popularity comes from the Redis counters (24 h → 7 d → all-time → rating);
        global popularity from the retriever, with the same Redis walk when it cannot answer."""
        start = time.perf_counter()
        chosen: list[tuple[Item, float]] = []
        with stage("gateway", "feed_popular"):
            if not brands:
                try:
                    body = await self.clients["retriever"].get_json(
                        "/v1/popular", params={"k": min(n, RETRIEVER_MAX_K), "catalog": self.catalog},
                        timeout_ms=RETRIEVER_TIMEOUT_MS)
                    items = items_of(body)
                    chosen = [(item, 1.0 - i / max(1, len(items))) for i, item in enumerate(items)]
                except (DependencyUnavailable, DownstreamError, ValidationError) as exc:
                    log.info("retriever popularity unavailable: %s", exc)
                    self.degrade("retriever_unavailable")
            # the Redis walk ends in the catalog's rating order, so it also tops up a short list
            if len(chosen) < n and self.redis is not None:
                try:
                    more, _ = await popularity.popular_items(
                        self.redis, n, filters=Constraints(brands=brands) if brands else None, catalog=self.catalog)
                    chosen += [(item, pop * 0.5) for item, pop in more]
                except rd.REDIS_ERRORS as exc:  # Redis down: the feed lives without this part
                    log.info("popularity from Redis unavailable: %s", exc)
                    self.degrade("features_unavailable")
        self.timings["popular" if not brands else "preferred_brands"] = round((time.perf_counter() - start) * 1000, 2)
        return chosen


async def content_feed(user_id: str, redis: Any | None, clients: dict[str, ServiceClient], catalog: str, k: int,
                       exclude: Iterable[str] = ()) -> FeedResponse:
    """The content feed of a catalog without a CF model (users_api serves the route): reflects the user's
    clicks within about a second of `POST /v1/events/click`; one catalog's history, items and popularity;
    nothing in ``exclude`` (the user's dismissed items)."""
    feed = _Feed(redis, clients, user_id, k, catalog)
    features, bought = await feed.user()
    seeds = [i for i in dict.fromkeys(features.recent_clicks) if i not in bought][:SEED_CLICKS]
    brands = [b for b, _ in brand_affinities(features)][:PREFERRED_BRANDS]
    cold = not seeds and not brands
    exclude = set(bought) | set(seeds) | set(exclude)
    items: list[FeedItem] = []
    if seeds:
        items = blend_similar(await feed.similar(seeds), features, exclude)[:k]
    if len(items) < k and brands:
        floor = min((f.score for f in items), default=1.0)
        fill(items, await feed.popular(k * 3, brands), "preferred_brand", exclude, k, floor)
    if len(items) < k:
        floor = min((f.score for f in items), default=1.0)
        fill(items, await feed.popular(k * 3), "popular", exclude, k, floor * (0.5 if not cold else 1.0))
    return FeedResponse(user_id=user_id, catalog=catalog, items=items[:k], cold_start=cold, degraded=bool(feed.reasons),
                        degradation_reasons=feed.reasons, timings_ms=feed.timings)
