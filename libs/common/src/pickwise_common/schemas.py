"""The shared wire schemas: items, constraints, candidates, ranked items, answers, events, errors.

Services talk only through these (over HTTP and Kafka); request models forbid unknown fields so a typo
is a 422 naming the field rather than a silently ignored option.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pickwise_common.catalogs import DEFAULT_CATALOG, CatalogName

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
MAX_QUERY_CHARS = 500
MAX_FUTURE_SKEW = timedelta(minutes=5)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- catalog

PriceBand = Literal["budget", "mid", "premium", "flagship"]


class Item(Open):
    """A catalog item. ``price`` is in the catalog's ``currency``; ``price_inr`` is kept (equal to ``price``)
    for the INR catalog's clients and is null elsewhere (decision 0801)."""

    item_id: str
    catalog: str = DEFAULT_CATALOG
    title: str
    brand: str = ""
    model: str = ""
    color: str | None = None
    category: str = "mobile"
    ram_gb: float | None = None
    storage_gb: float | None = None
    price: float | None = None
    currency: str = "INR"
    price_inr: float | None = None
    original_price_inr: float | None = None
    discount_pct: float | None = None
    rating: float | None = None
    price_band: PriceBand | None = None
    group_id: str = ""
    attrs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _prices_and_group(self) -> Item:
        if self.price is None:
            if self.price_inr is None:
                raise ValueError("an item needs a price (price, or price_inr for an INR catalog)")
            self.price = self.price_inr
        if self.currency == "INR" and self.price_inr is None:
            self.price_inr = self.price
        if not self.group_id:
            self.group_id = self.item_id
        return self


SortIntent = Literal["relevance", "price_asc", "price_desc", "rating_desc"]


class Constraints(Strict):
    """Constraints parsed from a query and/or given as explicit filters. Unset means unconstrained."""

    brands: list[str] = Field(default_factory=list, max_length=20)
    brands_exclude: list[str] = Field(default_factory=list, max_length=20, description="brands the shopper ruled out")
    price_min_inr: float | None = Field(default=None, ge=0)
    price_max_inr: float | None = Field(default=None, ge=0)
    ram_gb_min: float | None = Field(default=None, ge=0)
    ram_gb_max: float | None = Field(default=None, ge=0)
    storage_gb_min: float | None = Field(default=None, ge=0)
    storage_gb_max: float | None = Field(default=None, ge=0)
    rating_min: float | None = Field(default=None, ge=0, le=5)
    discount_pct_min: float | None = Field(default=None, ge=0, le=100)
    price_bands: list[PriceBand] = Field(default_factory=list, max_length=5)
    feature_phone: bool | None = None
    colors: list[str] = Field(default_factory=list, max_length=20)
    sort: SortIntent = "relevance"

    @property
    def impossible(self) -> bool:
        return any(lo is not None and hi is not None and lo > hi for lo, hi in (
            (self.price_min_inr, self.price_max_inr), (self.ram_gb_min, self.ram_gb_max),
            (self.storage_gb_min, self.storage_gb_max)))


Filters = Constraints


class Correction(Open):
    """A word of the query read as another (a typo fixed against the catalog's vocabulary)."""

    # "from" on the wire whichever way the model is dumped (a route's model_dump() as well as FastAPI's)
    model_config = ConfigDict(extra="ignore", populate_by_name=True, serialize_by_alias=True)
    from_: str = Field(alias="from")
    to: str


class ParsedQuery(Constraints):
    """What a response says it understood: the constraints, the words it corrected, and which constraints
    it relaxed (in the order relaxed) because too few items met them all."""

    corrections: list[Correction] = Field(default_factory=list)
    relaxed: list[str] = Field(default_factory=list, description="constraint names relaxed, in order")


class FacetValue(Open):
    """One value of a facet with how many candidates have it; ``value`` is what to send back as a filter."""

    value: str
    label: str
    count: int


Facets = dict[str, list[FacetValue]]


# ---------------------------------------------------------------- retriever

RetrievalMode = Literal["bm25", "dense", "hybrid"]
FusionMethod = Literal["weighted", "rrf"]


class RetrieveRequest(Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    catalog: CatalogName = DEFAULT_CATALOG
    k: int = Field(default=50, ge=1, le=500)
    mode: RetrievalMode = "hybrid"
    fusion: FusionMethod = "weighted"
    alpha: float = Field(default=0.3, ge=0, le=1)
    filters: Constraints | None = None
    previous: Constraints | None = Field(
        default=None, description="constraints of the previous turn, merged when the query is a refinement")
    group_variants: bool = True

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be blank")
        return value


class Candidate(Open):
    item: Item
    bm25_score: float | None = None
    dense_score: float | None = None
    fused_score: float
    satisfies: dict[str, bool] = Field(default_factory=dict, description="each parsed constraint: holds or not")
    variant_ids: list[str] = Field(default_factory=list, description="other colours of the same model")
    popularity: float | None = None


class RetrieveResponse(Open):
    query: str
    mode: RetrievalMode
    parsed: ParsedQuery
    refined: bool = False
    candidates: list[Candidate]
    facets: Facets = Field(default_factory=dict, description="counts over the candidate pool before the cut to k")
    timings_ms: dict[str, float] = Field(default_factory=dict)


# ---------------------------------------------------------------- reranker

class RerankRequest(Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    catalog: CatalogName = DEFAULT_CATALOG
    candidates: list[Candidate] = Field(max_length=500)
    parsed: ParsedQuery | Constraints | None = None
    user_id: Id | None = None
    k: int = Field(default=10, ge=1, le=100)
    explain: bool = False
    ranker_alias: Literal["champion", "challenger"] = Field(
        default="champion", description="which registered ranker scores (decision 1003); the champion answers "
                                        "when no challenger is loaded")


class BoostDetail(Open):
    clicked: bool = False
    affinity: float = 0.0
    popularity: float = 0.0
    multiplier: float = 1.0


class RankedItem(Open):
    item: Item
    score: float
    rank: int
    cross_encoder_score: float | None = None
    ranker_score: float | None = None
    base_score: float | None = None
    boost: BoostDetail | None = None
    variant_ids: list[str] = Field(default_factory=list)


class RerankResponse(Open):
    items: list[RankedItem]
    cross_encoder: str | None = None
    ranker: str | None = None
    ranker_version: str | None = Field(default=None, description="'<registered name>/<version>@<alias>' of the "
                                                                 "ranker that answered ('file:<version>@champion' "
                                                                 "without a registry), null without one; "
                                                                 "`ranker` is null when that version is held "
                                                                 "back by its gate (decision 1003b)")
    features_available: bool = True
    timings_ms: dict[str, float] = Field(default_factory=dict)


# ---------------------------------------------------------------- generator

class Turn(Open):
    query: str
    item_ids: list[str] = Field(default_factory=list)
    answer: str | None = None
    parsed: dict[str, Any] = Field(default_factory=dict)
    variant: str | None = None
    ts: datetime | None = None


class GenerateRequest(Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    catalog: CatalogName = DEFAULT_CATALOG
    items: list[Item] = Field(max_length=50)
    history: list[Turn] = Field(default_factory=list, max_length=20)
    parsed: ParsedQuery | Constraints | None = None


class Pick(Open):
    item_id: str
    why: str


class Usage(Open):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Answer(Open):
    summary: str
    picks: list[Pick] = Field(default_factory=list)
    provider: str
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    fallback_reasons: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------- events

class EventType(str, Enum):
    view = "view"
    click = "click"
    add_to_cart = "add_to_cart"
    purchase = "purchase"
    dismiss = "dismiss"   # "not interested": never recommend this item to this user again


EVENT_WEIGHTS = {EventType.view: 0.2, EventType.click: 1.0, EventType.add_to_cart: 3.0, EventType.purchase: 5.0,
                 EventType.dismiss: 0.0}


def _not_in_future(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    value = ensure_utc(value)
    if value - datetime.now(UTC) > MAX_FUTURE_SKEW:
        raise ValueError("ts is more than 5 minutes in the future")
    return value


class EventIn(Strict):
    """An interaction as a client posts it."""

    event_id: uuid.UUID | None = None
    type: EventType
    user_id: Id
    item_id: Id
    catalog: CatalogName | None = Field(default=None, description="default: the API key's catalog, else the item's")
    quantity: int | None = Field(default=None, ge=1, le=100_000, description="units, for purchase/add_to_cart")
    session_id: Id | None = None
    request_id: Annotated[str, Field(max_length=128)] | None = None
    position: int | None = Field(default=None, ge=0, le=10_000)
    source: Literal["search", "feed", "similar"] | None = None
    ts: datetime | None = None

    @field_validator("ts")
    @classmethod
    def _ts(cls, value: datetime | None) -> datetime | None:
        return _not_in_future(value)


class ClickIn(Strict):
    event_id: uuid.UUID | None = None
    user_id: Id
    item_id: Id
    catalog: CatalogName | None = None
    session_id: Id | None = None
    request_id: Annotated[str, Field(max_length=128)] | None = None
    position: int | None = Field(default=None, ge=0, le=10_000)
    source: Literal["search", "feed", "similar"] | None = None
    ts: datetime | None = None

    @field_validator("ts")
    @classmethod
    def _ts(cls, value: datetime | None) -> datetime | None:
        return _not_in_future(value)

    def as_event(self) -> EventIn:
        return EventIn(type=EventType.click, **self.model_dump())


class InteractionEvent(Open):
    """The message on ``events.interactions`` (key = user_id)."""

    schema_version: int = 1
    event_id: uuid.UUID
    type: EventType
    ts: datetime
    user_id: str
    item_id: str
    catalog: str = DEFAULT_CATALOG
    quantity: int | None = None
    invoice: str | None = None
    session_id: str | None = None
    request_id: str | None = None
    position: int | None = None
    source: str | None = None

    @classmethod
    def from_input(cls, event: EventIn) -> InteractionEvent:
        return cls(event_id=event.event_id or uuid.uuid4(), type=event.type,
                   ts=event.ts or datetime.now(UTC), user_id=event.user_id, item_id=event.item_id,
                   catalog=event.catalog or DEFAULT_CATALOG, quantity=event.quantity,
                   session_id=event.session_id, request_id=event.request_id, position=event.position,
                   source=event.source)


class SessionEvent(Open):
    """The message on ``events.sessions`` (key = session_id): one turn of a session."""

    schema_version: int = 1
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    session_id: str
    user_id: str | None = None
    request_id: str | None = None
    query: str
    item_ids: list[str] = Field(default_factory=list)
    answer: str | None = None
    parsed: dict[str, Any] = Field(default_factory=dict)
    variant: str | None = None
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ImpressionItem(Open):
    """One item as a response showed it: its 0-based position on the page and the score it was ranked by."""

    item_id: str
    position: int = Field(ge=0)
    score: float | None = None
    team: Literal["A", "B"] | None = Field(default=None, description="team-draft interleaving: the ranker that "
                                                                      "contributed the item")


class ImpressionEvent(Open):
    """The message on ``events.impressions`` (key = user_id, else session_id, else request_id): what one response
    showed, logged after the response (decision 1001). Clicks and purchases carry the same ``request_id``."""

    schema_version: int = 1
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    request_id: str
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))
    endpoint: Literal["search", "recommendations", "feed", "similar", "bought_together"]
    catalog: str = DEFAULT_CATALOG
    user_id: str | None = None
    session_id: str | None = None
    query: str | None = None
    constraints: dict[str, Any] = Field(default_factory=dict, description="brands, price_band, price_min/max, "
                                                                          "ram_gb_min, storage_gb_min (drift)")
    experiment: str | None = None
    variant: str | None = None
    model_versions: dict[str, str] = Field(default_factory=dict, description="e.g. {'ranker': "
                                                                              "'pickwise-ranker/3@champion'}")
    items: list[ImpressionItem] = Field(default_factory=list)
    explore: dict[str, int] | None = Field(default=None, description="RandPair exploration: {'pair': k} when "
                                                                     "positions k and k+1 were randomised")
    interleaving: bool = False
    latency_ms: float | None = None
    status: int = 200
    degraded: list[str] = Field(default_factory=list)


class EventAccepted(Open):
    event_id: uuid.UUID
    status: Literal["accepted"] = "accepted"


# ---------------------------------------------------------------- collaborative filtering (decision 0813)

class CfRecommendRequest(Strict):
    """The retriever's ``POST /v1/cf/recommend``: a user's feed from the catalog's CF model."""

    catalog: CatalogName = DEFAULT_CATALOG
    user_id: Id
    k: int = Field(default=10, ge=1, le=100)
    explain: bool = False
    exclude_item_ids: list[Id] = Field(default_factory=list, max_length=500)


class CfScoredItem(Open):
    item: Item
    score: float
    reason: str = Field(description="the source that gave most: repeat, als, clicks, bought_together, popularity")
    sources: dict[str, float] | None = Field(default=None, description="explain: each source's contribution")


class CfRecommendResponse(Open):
    catalog: str
    user_id: str
    model_version: str | None = Field(description="null: no CF model for this catalog (items is empty)")
    cold_start: bool
    items: list[CfScoredItem]
    degraded: bool = False
    degradation_reasons: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)


class BoughtTogetherItem(Open):
    item: Item
    lift: float = Field(description="P(both) / (P(a) P(b)) over the training baskets (invoices)")
    npmi: float
    support: int = Field(description="baskets holding both")


class BoughtTogetherResponse(Open):
    item_id: str
    catalog: str
    model_version: str | None
    items: list[BoughtTogetherItem]


# ---------------------------------------------------------------- errors

class ErrorField(Open):
    field: str
    message: str
    type: str = ""


class ErrorDetail(Open):
    code: str
    message: str
    fields: list[ErrorField] = Field(default_factory=list)
    request_id: str | None = None
    event_id: uuid.UUID | None = Field(default=None, description="events: the id of the event this answer refers "
                                                                 "to (server-generated when the client sent none); "
                                                                 "retry with it so the event is stored once")
    event_ids: list[uuid.UUID | None] | None = Field(
        default=None, description="events:batch: each event's id in request order (null for an invalid event)")


class ErrorBody(Open):
    error: ErrorDetail


def ensure_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)

