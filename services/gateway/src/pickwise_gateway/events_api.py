"""Event ingestion (DESIGN §4): ``POST /v1/events``, ``/v1/events/click`` and ``/v1/events:batch``.

An event is answered 202 only after the broker acknowledged it (``acks=all``), so a 202 means it will be
applied; otherwise 503 with ``Retry-After`` and the event's id, and the client retries with that ``event_id``
(the consumer de-duplicates). Events about items the catalog does not hold are refused (422). An event's
catalog is the one it names, else the API key's single catalog, else its item id's (tenancy.py)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import ValidationError

from pickwise_common.catalogs import DEFAULT_CATALOG
from pickwise_common.errors import DependencyUnavailable, InvalidInput, NotFound
from pickwise_common.kafka import TOPIC_INTERACTIONS, JsonProducer
from pickwise_common.public_api import BatchIn, BatchResult, EventResult
from pickwise_common.schemas import ClickIn, ErrorBody, EventAccepted, EventIn, InteractionEvent
from pickwise_common.telemetry import stage
from pickwise_gateway.deps import CatalogScopeDep, KnownItemsDep, ProducerDep
from pickwise_gateway.known_items import KnownItems
from pickwise_gateway.tenancy import CatalogScope

log = logging.getLogger("pickwise.gateway.events")

router = APIRouter(prefix="/v1", tags=["events"])

EVENTS_INGESTED = Counter("pickwise_gateway_events_total", "Interaction events received, by outcome",
                          ["type", "outcome"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid X-API-Key"},
    403: {"model": ErrorBody, "description": "the API key lacks the `events` scope or may not use the catalog"},
    404: {"model": ErrorBody, "description": "unknown `catalog`"},
    422: {"model": ErrorBody, "description": "invalid event or an `item_id` the catalog does not hold; "
                                             "`error.fields` names each offending field"},
    429: {"model": ErrorBody, "description": "rate limit of this API key exceeded"},
    503: {"model": ErrorBody, "description": "the broker did not acknowledge in time; retry after Retry-After "
                                             "with the `error.event_id` (also in `X-Event-ID`)"},
}


def _unavailable(exc: DependencyUnavailable, event_id: uuid.UUID) -> DependencyUnavailable:
    """The 503 of an event that was not acknowledged names its id (body and ``X-Event-ID``): a client that
    sent none retries with this one, and the consumer stores the event once however often it arrives."""
    return DependencyUnavailable(f"{exc.message}; retry with event_id {event_id}", dependency=exc.dependency,
                                 retry_after_s=exc.retry_after_s, headers={"X-Event-ID": str(event_id)},
                                 details={"event_id": str(event_id)})


async def unknown_items(known: KnownItems, events: Sequence[EventIn]) -> set[tuple[str, str]]:
    """``(catalog, item_id)`` of the events about items their catalog does not hold."""
    by_catalog: dict[str, list[str]] = {}
    for event in events:
        by_catalog.setdefault(event.catalog or DEFAULT_CATALOG, []).append(event.item_id)
    missing: set[tuple[str, str]] = set()
    for catalog, ids in by_catalog.items():
        missing.update((catalog, i) for i in await known.unknown(ids, catalog))
    return missing


def _key(event: EventIn) -> tuple[str, str]:
    return event.catalog or DEFAULT_CATALOG, event.item_id


async def check_items(known: KnownItems, events: Sequence[EventIn], *, field_prefix: str = "body.") -> None:
    """InvalidInput (422) naming ``item_id`` when an event is about an item its catalog does not hold."""
    unknown = await unknown_items(known, events)
    missing = {item_id for _, item_id in unknown}
    if missing:
        fields = [{"field": f"{field_prefix}item_id",
                   "message": f"item {e.item_id!r} is not in the catalog {e.catalog or DEFAULT_CATALOG!r}",
                   "type": "unknown_item"} for e in events if _key(e) in unknown]
        raise InvalidInput(f"item_id: {sorted(missing)[0]!r} is not in the catalog", fields=fields)


async def publish(producer: JsonProducer, event: EventIn) -> InteractionEvent:
    """Produce one event (key = user_id, trace context in headers); returns after the broker's ack. The
    producer re-creates missing topics first after a failed send (pickwise_common.kafka.JsonProducer)."""
    message = InteractionEvent.from_input(event)
    try:
        with stage("gateway", "produce_event"):
            await producer.send(TOPIC_INTERACTIONS, message.model_dump(mode="json"), key=message.user_id)
    except DependencyUnavailable as exc:
        EVENTS_INGESTED.labels(message.type.value, "unavailable").inc()
        raise _unavailable(exc, message.event_id) from exc
    EVENTS_INGESTED.labels(message.type.value, "accepted").inc()
    return message


@router.post("/events", status_code=202, response_model=EventAccepted, summary="Record an interaction",
             responses=RESPONSES)
async def post_event(event: EventIn, producer: ProducerDep, known: KnownItemsDep,
                     scope: CatalogScopeDep) -> EventAccepted:
    """202 with the `event_id` (generated when absent) once the broker has acknowledged the event. Without
    `catalog` the event belongs to the API key's catalog when the key is limited to one, else to its item's
    (by the id's prefix: `fm-` flipkart, `or-` retail), else to flipkart."""
    event = with_catalog(event, scope)
    await check_items(known, [event])
    message = await publish(producer, event)
    return EventAccepted(event_id=message.event_id)


@router.post("/events/click", status_code=202, response_model=EventAccepted, summary="Record a click",
             responses=RESPONSES)
async def post_click(click: ClickIn, producer: ProducerDep, known: KnownItemsDep,
                     scope: CatalogScopeDep) -> EventAccepted:
    """Shorthand for `POST /v1/events` with `type: click`."""
    event = with_catalog(click.as_event(), scope)
    await check_items(known, [event])
    message = await publish(producer, event)
    return EventAccepted(event_id=message.event_id)


def with_catalog(event: EventIn, scope: CatalogScope, *, field: str = "body.catalog") -> EventIn:
    """The event with its catalog resolved (404 unknown, 403 outside the key's scope)."""
    return event.model_copy(update={"catalog": scope.for_event(event.catalog, event.item_id, field=field)})


def _fields(exc: ValidationError, index: int) -> list[dict[str, str]]:
    return [{"field": ".".join(["events", str(index)] + [str(p) for p in e["loc"]]), "message": e["msg"],
             "type": e["type"]} for e in exc.errors()]


@router.post("/events:batch", status_code=202, response_model=BatchResult, summary="Record up to 500 interactions",
             responses={202: {"model": BatchResult, "description": "every event was acknowledged"},
                        207: {"model": BatchResult, "description": "some events were invalid or not acknowledged"},
                        **RESPONSES})
async def post_batch(body: Annotated[BatchIn, Body()], producer: ProducerDep, known: KnownItemsDep,
                     scope: CatalogScopeDep) -> JSONResponse:
    """Each event is validated and produced on its own; the result lists each one's outcome in order.
    202 when all were acknowledged, 207 when some were not (retry those with the same `event_id`), 422
    when none is valid (an unknown `item_id` is invalid), 503 when the broker acknowledged none (the body's
    `error.event_ids` gives each event's id for the retry)."""
    results: list[EventResult | None] = [None] * len(body.events)
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(body.events):
        try:
            event = EventIn.model_validate(raw)
            event = with_catalog(event, scope, field=f"events.{index}.catalog")
        except ValidationError as exc:
            results[index] = EventResult(index=index, status="invalid", error="invalid event",
                                         fields=_fields(exc, index))
            continue
        except NotFound as exc:  # an unknown catalog: this event is invalid, the others still count
            results[index] = EventResult(index=index, status="invalid", error=exc.message, fields=exc.fields)
            continue
        # the id is fixed before producing, so a client can retry exactly the ones not acknowledged
        valid.append((index, event.model_copy(update={"event_id": event.event_id or uuid.uuid4()})))
    missing = await unknown_items(known, [event for _, event in valid])
    for index, event in valid:
        if _key(event) in missing:
            results[index] = EventResult(index=index, status="invalid", error="unknown item", fields=[
                {"field": f"events.{index}.item_id",
                 "message": f"item {event.item_id!r} is not in the catalog {event.catalog!r}",
                 "type": "unknown_item"}])
    valid = [(index, event) for index, event in valid if _key(event) not in missing]
    if not valid:
        fields = [f for r in results if r is not None for f in r.fields]
        raise InvalidInput(f"none of the {len(results)} events is valid", fields=fields)
    outcomes = await asyncio.gather(*(publish(producer, event) for _, event in valid),
                                    return_exceptions=True)
    for (index, event), outcome in zip(valid, outcomes, strict=True):
        if isinstance(outcome, InteractionEvent):
            results[index] = EventResult(index=index, status="accepted", event_id=outcome.event_id)
        elif isinstance(outcome, DependencyUnavailable):
            results[index] = EventResult(index=index, status="unavailable", event_id=event.event_id,
                                         error=outcome.message)
        else:
            raise outcome  # a bug of ours, not an answer
    final = [r for r in results if r is not None]
    accepted = sum(r.status == "accepted" for r in final)
    unavailable = sum(r.status == "unavailable" for r in final)
    summary = BatchResult(accepted=accepted, rejected=len(final) - accepted - unavailable, unavailable=unavailable,
                          results=final)
    if unavailable and not accepted:
        raise DependencyUnavailable(f"the broker acknowledged none of {unavailable} events; retry them with the "
                                    "event_ids given", dependency="kafka", retry_after_s=1,
                                    details={"event_ids": [str(r.event_id) if r.event_id else None for r in final]})
    status = 202 if accepted == len(final) else 207
    return JSONResponse(summary.model_dump(mode="json"), status_code=status)
