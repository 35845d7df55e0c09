"""The gateway's public wire models (recommendations, search, catalog reads, feed, event batches), shared by
the gateway and ``pickwise-client``. Pydantic and ``pickwise_common.schemas`` only: importable without FastAPI
or aiokafka."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pickwise_common.catalogs import DEFAULT_CATALOG, CatalogName
from pickwise_common.schemas import (
    MAX_QUERY_CHARS,
    Answer,
    BoostDetail,
    BoughtTogetherResponse,
    Candidate,
    Constraints,
    Facets,
    Id,
    Item,
    ParsedQuery,
    PriceBand,
)

MAX_K = 50
MAX_BATCH_EVENTS = 500

DegradationReason = Literal["session_unavailable", "retriever_unavailable", "reranker_unavailable",
                            "features_unavailable", "generator_unavailable", "llm_offline"]


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "samsung phone with 8gb ram under 20k", "user_id": "u-42", "session_id": "s-42", "k": 5},
        {"query": "best camera phone", "k": 10, "filters": {"brands": ["apple"], "price_max_inr": 80000},
         "generate": False, "explain": True},
        {"query": "red heart t-light holder", "catalog": "retail", "k": 5},
    ]})

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="free-text shopper query")
    catalog: CatalogName | None = Field(default=None, description="catalog (tenant) to search; default: the API "
                                        "key's catalog when it is limited to one, else flipkart")
    user_id: Id | None = Field(default=None, description="stable shopper id (personalisation, A/B bucket)")
    session_id: Id | None = Field(default=None, description="conversation id (history, session events)")
    k: int = Field(default=10, ge=1, le=MAX_K, strict=True, description="number of items to return")
    filters: Constraints | None = Field(default=None, description="explicit filters, merged with the parsed ones")
    generate: bool = Field(default=True, description="ask the generator for a grounded answer")
    explain: bool = Field(default=False, description="per-item score breakdown and behaviour boost")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be blank")
        if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
            raise ValueError("query must not contain control characters")
        return value

    @field_validator("filters")
    @classmethod
    def _possible(cls, value: Constraints | None) -> Constraints | None:
        if value is not None and value.impossible:
            pairs = [(lo, hi) for lo, hi in (("price_min_inr", "price_max_inr"), ("ram_gb_min", "ram_gb_max"),
                                             ("storage_gb_min", "storage_gb_max"))
                     if getattr(value, lo) is not None and getattr(value, hi) is not None
                     and getattr(value, lo) > getattr(value, hi)]
            raise ValueError("; ".join(f"{lo} is greater than {hi}" for lo, hi in pairs))
        return value


class Scores(BaseModel):
    bm25: float | None = None
    dense: float | None = None
    fused: float | None = None
    cross_encoder: float | None = None
    ranker: float | None = None
    base: float | None = None
    popularity: float | None = None


class ResultItem(BaseModel):
    item_id: str
    catalog: str = Field(default=DEFAULT_CATALOG, description="the catalog the item belongs to")
    title: str
    brand: str = ""
    model: str = ""
    category: str | None = None
    color: str | None = None
    ram_gb: float | None = None
    storage_gb: float | None = None
    price: float = Field(description="in `currency`")
    currency: str = Field(default="INR", description="ISO 4217 code of `price`: INR (flipkart), GBP (retail)")
    price_inr: float | None = Field(default=None, description="= `price` in an INR catalog, else null (kept for "
                                                              "clients written before catalogs)")
    original_price_inr: float | None = None
    discount_pct: float | None = None
    rating: float | None = None
    price_band: PriceBand | None = None
    variant_ids: list[str] = Field(default_factory=list, description="other colours of the same model")
    score: float
    rank: int = Field(ge=1)
    scores: Scores | None = Field(default=None, description="present when explain: true")
    boost: BoostDetail | None = Field(default=None, description="present when explain: true")
    satisfies: dict[str, bool] | None = Field(
        default=None, description="present when explain: true: each constraint of `parsed`, met or not")

    @model_validator(mode="before")
    @classmethod
    def _price_from_price_inr(cls, data: Any) -> Any:
        """An answer of a gateway from before catalogs has only ``price_inr``: it is the INR ``price``."""
        if isinstance(data, dict) and data.get("price") is None and data.get("price_inr") is not None:
            return {**data, "price": data["price_inr"], "currency": data.get("currency") or "INR"}
        return data


class RecommendationResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "request_id": "5f0c0d1e2b3a4c5d6e7f8a9b0c1d2e3f", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "catalog": "flipkart",
        "items": [{"item_id": "fm-01527", "catalog": "flipkart",
                   "title": "Samsung Galaxy M31 (Ocean Blue, 8 GB RAM, 128 GB)", "brand": "Samsung",
                   "model": "Galaxy M31", "category": "mobile", "color": "Ocean Blue", "ram_gb": 8,
                   "storage_gb": 128, "price": 18654, "currency": "INR", "price_inr": 18654,
                   "original_price_inr": 18950, "discount_pct": 1.56, "rating": 4.3, "price_band": "mid",
                   "variant_ids": ["fm-01576"], "score": 0.91, "rank": 1}],
        "parsed": {"brands": ["Samsung"], "price_max_inr": 20000, "ram_gb_min": 8},
        "answer": {"summary": "Top pick: Samsung Galaxy M31 (Ocean Blue, 8 GB RAM, 128 GB) at ₹18,654, rated 4.3.",
                   "picks": [{"item_id": "fm-01527", "why": "8 GB RAM / 128 GB storage, ₹18,654, rated 4.3"}],
                   "provider": "template", "fallback_reasons": ["llm_offline"]},
        "variant": "A", "degraded": True, "degradation_reasons": ["llm_offline"],
        "timings_ms": {"session": 2.1, "retrieve": 31.5, "rerank": 12.0, "generate": 3.2, "total": 51.0}}]})

    request_id: str
    trace_id: str | None = None
    catalog: str = Field(default=DEFAULT_CATALOG, description="the catalog that answered")
    query: str
    items: list[ResultItem]
    parsed: ParsedQuery = Field(description="the constraints understood, with any relaxed to fill the page")
    answer: Answer | None = None
    facets: Facets = Field(default_factory=dict, description="brand, price, ram, storage, rating: values with "
                           "counts of models among the retrieved candidates (before the cut to k); send a value "
                           "back as a filter (decision 0711)")
    variant: str
    model_versions: dict[str, str] = Field(default_factory=dict, description="the models that answered, e.g. "
                                           "{'ranker': 'pickwise-ranker/3@champion'} (decision 1001)")
    degraded: bool
    degradation_reasons: list[DegradationReason]
    timings_ms: dict[str, float]


# ---------------------------------------------------------------- catalog reads (the retriever's answers, proxied)

class SimilarResponse(BaseModel):
    item_id: str
    candidates: list[Candidate]
    catalog: str | None = None
    source: Literal["cf", "content"] | None = Field(default=None, description="cf: neighbours by purchase history "
                                                    "(ALS factors); content: by embedding (the item has no history)")
    model_version: str | None = None
    request_id: str | None = Field(default=None, description="the gateway's request id: post it back with "
                                                            "clicks and purchases (decision 1001)")


class BoughtTogetherPage(BoughtTogetherResponse):
    """The gateway's ``GET /v1/items/{id}/bought-together``: the retriever's answer plus the request id."""

    request_id: str | None = Field(default=None, description="the gateway's request id: post it back with "
                                                            "clicks and purchases (decision 1001)")


class PopularResponse(BaseModel):
    source: str = Field(description="24h, 7d, all (Redis popularity) or rating (catalog rating order)")
    candidates: list[Candidate]


# ---------------------------------------------------------------- personal feed

class FeedItem(BaseModel):
    item: Item
    score: float
    reason: str = Field(description="similar (to source_item_id), preferred_brand or popular; with a CF model: "
                                    "the source that gave most (repeat, als, clicks, bought_together, popularity)")
    source_item_id: str | None = None
    sources: dict[str, float] | None = Field(default=None, description="explain=true: each source's contribution "
                                                                       "to score")


class FeedResponse(BaseModel):
    user_id: str
    request_id: str | None = Field(default=None, description="the gateway's request id: post it back with clicks "
                                                            "and purchases (decision 1001)")
    catalog: str = DEFAULT_CATALOG
    items: list[FeedItem]
    cold_start: bool
    model_version: str | None = Field(default=None, description="the CF model version that answered (null: none "
                                                                "trained for this catalog; the content feed answered)")
    degraded: bool = False
    degradation_reasons: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)


# ---------------------------------------------------------------- event batches

class BatchIn(BaseModel):
    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH_EVENTS,
                                         description=f"up to {MAX_BATCH_EVENTS} events as for POST /v1/events")


class EventResult(BaseModel):
    index: int
    status: Literal["accepted", "invalid", "unavailable"]
    event_id: uuid.UUID | None = None
    error: str | None = None
    fields: list[dict[str, str]] = Field(default_factory=list)


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    unavailable: int
    results: list[EventResult]
