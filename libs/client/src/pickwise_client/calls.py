"""One description per API operation (method, path, parameters, body, response model), shared by the sync and
the async client so the two cannot drift apart; also the response decoding both use."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from pickwise_client.errors import UnexpectedResponse, error_from_response
from pickwise_common.public_api import (
    BatchResult,
    FeedResponse,
    PopularResponse,
    RecommendationRequest,
    RecommendationResponse,
    SimilarResponse,
)
from pickwise_common.schemas import BoughtTogetherResponse, ClickIn, EventAccepted, EventIn, Item

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[M]):
    method: str
    path: str
    model: type[M]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None


def _segment(value: str) -> str:
    return quote(value, safe="")


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def search(q: str, *, k: int = 10, user_id: str | None = None, session_id: str | None = None,
           catalog: str | None = None) -> Call[RecommendationResponse]:
    return Call("GET", "/v1/search", RecommendationResponse,
                _params(q=q, k=k, user_id=user_id, session_id=session_id, catalog=catalog))


def recommendations(request: RecommendationRequest | Mapping[str, Any]) -> Call[RecommendationResponse]:
    # a model is sent as the fields it was given, so the server applies its own defaults to the rest
    body = (request.model_dump(mode="json", exclude_unset=True) if isinstance(request, RecommendationRequest)
            else dict(request))
    return Call("POST", "/v1/recommendations", RecommendationResponse, json=body)


def item(item_id: str, *, catalog: str | None = None) -> Call[Item]:
    return Call("GET", f"/v1/items/{_segment(item_id)}", Item, _params(catalog=catalog))


def similar(item_id: str, *, k: int = 10, catalog: str | None = None) -> Call[SimilarResponse]:
    return Call("GET", f"/v1/items/{_segment(item_id)}/similar", SimilarResponse, _params(k=k, catalog=catalog))


def bought_together(item_id: str, *, k: int = 10, catalog: str | None = None) -> Call[BoughtTogetherResponse]:
    return Call("GET", f"/v1/items/{_segment(item_id)}/bought-together", BoughtTogetherResponse,
                _params(k=k, catalog=catalog))


def popular(*, k: int = 10, catalog: str | None = None) -> Call[PopularResponse]:
    return Call("GET", "/v1/popular", PopularResponse, _params(k=k, catalog=catalog))


def feed(user_id: str, *, k: int = 10, catalog: str | None = None, explain: bool | None = None) -> Call[FeedResponse]:
    return Call("GET", f"/v1/users/{_segment(user_id)}/recommendations", FeedResponse,
                _params(k=k, catalog=catalog, explain=None if explain is None else str(explain).lower()))


def _event_json(event: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    return event.model_dump(mode="json", exclude_none=True) if isinstance(event, BaseModel) else dict(event)


def event(event: EventIn | Mapping[str, Any]) -> Call[EventAccepted]:
    return Call("POST", "/v1/events", EventAccepted, json=_event_json(event))


def click(click: ClickIn | Mapping[str, Any]) -> Call[EventAccepted]:
    return Call("POST", "/v1/events/click", EventAccepted, json=_event_json(click))


def events_batch(events: Iterable[EventIn | Mapping[str, Any]]) -> Call[BatchResult]:
    return Call("POST", "/v1/events:batch", BatchResult, json={"events": [_event_json(e) for e in events]})


def decode(response: httpx.Response, model: type[M]) -> M:
    """The response's body as ``model``, or the typed error for an error status. A 207 from
    ``/v1/events:batch`` is a success: the per-event outcomes are in the result."""
    if response.status_code >= 400:
        raise error_from_response(response)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise UnexpectedResponse(response.status_code, "unexpected_response",
                                 f"{response.request.method} {response.request.url.path}: body is not a "
                                 f"{model.__name__}: {exc.errors()[0]['msg']}",
                                 request_id=response.headers.get("x-request-id")) from exc
