"""The session service's routes: session memory, user features, a user's event log."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from pickwise_common.catalogs import DEFAULT_CATALOG, catalog_spec
from pickwise_common.errors import DependencyUnavailable
from pickwise_common.features import UserFeatures
from pickwise_common.schemas import ErrorBody, EventType, ImpressionItem, Turn
from pickwise_common.telemetry import stage
from pickwise_session import memory
from pickwise_session.deps import PostgresDep, RedisDep, SettingsDep

router = APIRouter(prefix="/v1")

SafeId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]


class StoredTurn(Turn):
    turn_no: int
    request_id: str | None = None


class SessionOut(BaseModel):
    session_id: str
    user_id: str | None = None
    turns: list[StoredTurn] = Field(description="oldest first, newest last")
    source: str = Field(description="cache or postgres")


class StoredEvent(BaseModel):
    event_id: str
    type: str
    user_id: str
    item_id: str
    catalog: str = DEFAULT_CATALOG
    quantity: int | None = None
    session_id: str | None = None
    request_id: str | None = None
    position: int | None = None
    source: str | None = None
    ts: str
    received_at: str


class StoredImpression(BaseModel):
    """What one response showed the user (decision 1001b): the page's items with their 0-based positions and the
    scores they were ordered by, the variant and model versions that served it, the RandPair exploration."""

    event_id: str
    type: Literal["impression"] = "impression"
    request_id: str = Field(description="the response's request_id; clicks and purchases carry it back")
    ts: str
    received_at: str
    endpoint: str = Field(description="search, recommendations, feed, similar or bought_together")
    catalog: str = DEFAULT_CATALOG
    user_id: str | None = None
    session_id: str | None = None
    query: str | None = None
    constraints: dict[str, Any] = Field(default_factory=dict, description="the parsed query's constraints")
    experiment: str | None = None
    variant: str | None = None
    model_versions: dict[str, str] = Field(default_factory=dict,
                                           description="e.g. {'ranker': 'pickwise-ranker/3@champion'}")
    items: list[ImpressionItem] = Field(default_factory=list, description="in page order")
    explore: dict[str, int] | None = Field(default=None, description="{'pair': k, 'swapped': 0|1} when the "
                                                                     "response randomised positions k and k+1")
    interleaving: bool = False
    latency_ms: float | None = None
    status: int = 200
    degraded: list[str] = Field(default_factory=list)


IMPRESSION = "impression"

# derived from EventType, so a new interaction type is a filter value without an edit here; mypy cannot see
# members made from a comprehension (the route compares ``.value``, not a member name)
EventLogType = Enum(  # type: ignore[misc]
    "EventLogType", {**{t.name: t.value for t in EventType}, IMPRESSION: IMPRESSION}, type=str, module=__name__)
EventLogType.__doc__ = "The ``type`` filter: an interaction type, or ``impression`` for what responses showed."


class UserEventsOut(BaseModel):
    user_id: str
    events: list[StoredEvent | StoredImpression] = Field(
        description="newest first: interactions (StoredEvent), or impressions (StoredImpression) with "
                    "type=impression")


@router.get("/sessions/{session_id}", response_model=SessionOut, tags=["sessions"],
            responses={404: {"model": ErrorBody, "description": "unknown session"}})
async def get_session(session_id: SafeId, postgres: PostgresDep, redis: RedisDep, settings: SettingsDep,
                      limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
    """The session's last turns with their parsed constraints (from the Redis cache, else Postgres)."""
    with stage("session", "read_session"):
        return await memory.session_turns(postgres, redis, session_id, limit, settings.session_cache_turns)


CatalogQuery = Annotated[str | None, Query(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$",
                                           description="catalog (tenant); 404 when unknown")]


@router.get("/users/{user_id}/features", response_model=UserFeatures, tags=["users"],
            responses={404: {"model": ErrorBody, "description": "unknown catalog"},
                       503: {"model": ErrorBody, "description": "Redis unavailable"}})
async def get_features(user_id: SafeId, redis: RedisDep, settings: SettingsDep,
                       catalog: CatalogQuery = None) -> UserFeatures:
    """Recent clicks (newest first) and brand/category affinities decayed to now, in one catalog (default
    flipkart)."""
    name = catalog_spec(catalog).name
    with stage("session", "read_features"):
        if redis is None:
            raise DependencyUnavailable("redis is not configured", dependency="redis")
        try:
            return await memory.user_features(redis, user_id, settings.affinity_half_life_h, catalog=name)
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"redis unavailable: {type(exc).__name__}", dependency="redis") from exc


@router.get("/users/{user_id}/events", response_model=UserEventsOut, tags=["users"],
            responses={404: {"model": ErrorBody, "description": "unknown catalog"}})
async def get_events(user_id: SafeId, postgres: PostgresDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                     type: Annotated[EventLogType | None, Query(
                         description="only this type; `impression` returns what responses showed the user "
                                     "(StoredImpression) instead of their interactions")] = None,
                     catalog: CatalogQuery = None) -> dict[str, Any]:
    """The user's interactions from the Postgres event log, newest first: one catalog's when `catalog` is
    given, else every catalog's. With `type=impression`: the responses' impressions instead (items with their
    positions and scores, variant, model versions, exploration), newest first."""
    name = catalog_spec(catalog).name if catalog is not None else None
    with stage("session", "read_events"):
        if type is not None and type.value == IMPRESSION:
            events = await memory.user_impressions(postgres, user_id, limit, catalog=name)
        else:
            events = await memory.user_events(postgres, user_id, limit,
                                              type.value if type is not None else None, catalog=name)
    return {"user_id": user_id, "events": events}
