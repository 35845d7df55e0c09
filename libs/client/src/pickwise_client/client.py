"""``Client`` (blocking) and ``AsyncClient`` for the Pickwise gateway: one method per public operation, typed
answers (the API's own models), typed errors (``pickwise_client.errors``), the X-API-Key header on every call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from pickwise_client import calls
from pickwise_client.calls import Call, M
from pickwise_common.public_api import (
    BatchResult,
    FeedResponse,
    PopularResponse,
    RecommendationRequest,
    RecommendationResponse,
    SimilarResponse,
)
from pickwise_common.schemas import BoughtTogetherResponse, ClickIn, Constraints, EventAccepted, EventIn, Item

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 10.0
API_KEY_HEADER = "X-API-Key"


def _headers(api_key: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    out = {"Accept": "application/json", "User-Agent": "pickwise-client/0.1"}
    if api_key:
        out[API_KEY_HEADER] = api_key
    out.update(headers or {})
    return out


def _recommendation_body(query: str | RecommendationRequest, fields: dict[str, Any]) -> Any:
    if isinstance(query, RecommendationRequest):
        return query
    body: dict[str, Any] = {"query": query}
    for name, value in fields.items():
        if value is not None:
            body[name] = value.model_dump(mode="json", exclude_defaults=True) if isinstance(value, Constraints) \
                else value
    return body


def _click(user_id: str, item_id: str, optional: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": user_id, "item_id": item_id, **{k: v for k, v in optional.items() if v is not None}}


class Client:
    """Blocking client. ``transport`` (e.g. ``httpx.MockTransport``) and ``limits`` go to the httpx client;
    ``http`` is that client, for calls outside the public API (``/readyz``, ``/metrics``).

    >>> with Client("http://127.0.0.1:8000", api_key="dev-local-key") as pickwise:
    ...     top = pickwise.search("samsung 8gb ram under 20k", k=5).items[0]
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None, limits: httpx.Limits | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, headers=_headers(api_key, headers), timeout=timeout_s,
                                 transport=transport, limits=limits or httpx.Limits())

    def _send(self, call: Call[M]) -> M:
        response = self.http.request(call.method, call.path, params=call.params or None, json=call.json)
        return calls.decode(response, call.model)

    def search(self, q: str, *, k: int = 10, user_id: str | None = None, session_id: str | None = None,
               catalog: str | None = None) -> RecommendationResponse:
        return self._send(calls.search(q, k=k, user_id=user_id, session_id=session_id, catalog=catalog))

    def recommendations(self, query: str | RecommendationRequest, *, k: int | None = None,
                        user_id: str | None = None, session_id: str | None = None,
                        filters: Constraints | Mapping[str, Any] | None = None, generate: bool | None = None,
                        explain: bool | None = None, catalog: str | None = None) -> RecommendationResponse:
        return self._send(calls.recommendations(_recommendation_body(query, dict(
            k=k, user_id=user_id, session_id=session_id, filters=filters, generate=generate, explain=explain,
            catalog=catalog))))

    def item(self, item_id: str, *, catalog: str | None = None) -> Item:
        return self._send(calls.item(item_id, catalog=catalog))

    def similar(self, item_id: str, *, k: int = 10, catalog: str | None = None) -> SimilarResponse:
        return self._send(calls.similar(item_id, k=k, catalog=catalog))

    def bought_together(self, item_id: str, *, k: int = 10, catalog: str | None = None) -> BoughtTogetherResponse:
        return self._send(calls.bought_together(item_id, k=k, catalog=catalog))

    def popular(self, *, k: int = 10, catalog: str | None = None) -> PopularResponse:
        return self._send(calls.popular(k=k, catalog=catalog))

    def feed(self, user_id: str, *, k: int = 10, catalog: str | None = None,
             explain: bool | None = None) -> FeedResponse:
        return self._send(calls.feed(user_id, k=k, catalog=catalog, explain=explain))

    def event(self, event: EventIn | Mapping[str, Any]) -> EventAccepted:
        return self._send(calls.event(event))

    def click(self, user_id: str, item_id: str, *, session_id: str | None = None, request_id: str | None = None,
              position: int | None = None, source: str | None = None, event_id: str | None = None) -> EventAccepted:
        return self._send(calls.click(_click(user_id, item_id, dict(
            session_id=session_id, request_id=request_id, position=position, source=source, event_id=event_id))))

    def events_batch(self, events: Iterable[EventIn | ClickIn | Mapping[str, Any]]) -> BatchResult:
        """Up to 500 events; a partial success (207) returns normally: check ``accepted``/``results``."""
        return self._send(calls.events_batch(events))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsyncClient:
    """The same operations as ``Client``, awaitable, on one ``httpx.AsyncClient`` (share it across tasks).

    >>> async with AsyncClient("http://127.0.0.1:8000", api_key="dev-local-key") as pickwise:
    ...     feed = await pickwise.feed("u-42", k=10)
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, headers: Mapping[str, str] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, limits: httpx.Limits | None = None) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key, headers), timeout=timeout_s,
                                      transport=transport, limits=limits or httpx.Limits())

    async def _send(self, call: Call[M]) -> M:
        response = await self.http.request(call.method, call.path, params=call.params or None, json=call.json)
        return calls.decode(response, call.model)

    async def search(self, q: str, *, k: int = 10, user_id: str | None = None, session_id: str | None = None,
                     catalog: str | None = None) -> RecommendationResponse:
        return await self._send(calls.search(q, k=k, user_id=user_id, session_id=session_id, catalog=catalog))

    async def recommendations(self, query: str | RecommendationRequest, *, k: int | None = None,
                              user_id: str | None = None, session_id: str | None = None,
                              filters: Constraints | Mapping[str, Any] | None = None, generate: bool | None = None,
                              explain: bool | None = None, catalog: str | None = None) -> RecommendationResponse:
        return await self._send(calls.recommendations(_recommendation_body(query, dict(
            k=k, user_id=user_id, session_id=session_id, filters=filters, generate=generate, explain=explain,
            catalog=catalog))))

    async def item(self, item_id: str, *, catalog: str | None = None) -> Item:
        return await self._send(calls.item(item_id, catalog=catalog))

    async def similar(self, item_id: str, *, k: int = 10, catalog: str | None = None) -> SimilarResponse:
        return await self._send(calls.similar(item_id, k=k, catalog=catalog))

    async def bought_together(self, item_id: str, *, k: int = 10,
                              catalog: str | None = None) -> BoughtTogetherResponse:
        return await self._send(calls.bought_together(item_id, k=k, catalog=catalog))

    async def popular(self, *, k: int = 10, catalog: str | None = None) -> PopularResponse:
        return await self._send(calls.popular(k=k, catalog=catalog))

    async def feed(self, user_id: str, *, k: int = 10, catalog: str | None = None,
                   explain: bool | None = None) -> FeedResponse:
        return await self._send(calls.feed(user_id, k=k, catalog=catalog, explain=explain))

    async def event(self, event: EventIn | Mapping[str, Any]) -> EventAccepted:
        return await self._send(calls.event(event))

    async def click(self, user_id: str, item_id: str, *, session_id: str | None = None,
                    request_id: str | None = None, position: int | None = None, source: str | None = None,
                    event_id: str | None = None) -> EventAccepted:
        return await self._send(calls.click(_click(user_id, item_id, dict(
            session_id=session_id, request_id=request_id, position=position, source=source, event_id=event_id))))

    async def events_batch(self, events: Iterable[EventIn | ClickIn | Mapping[str, Any]]) -> BatchResult:
        """Up to 500 events; a partial success (207) returns normally: check ``accepted``/``results``."""
        return await self._send(calls.events_batch(events))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
