"""Event ingestion (DESIGN §4): ``POST /v1/events``, ``/v1/events/click`` and ``/v1/events:batch``.

An event is answered 202 only after the broker acknowledged it (``acks=all``), so a 202 means it will be
applied; otherwise 503 with ``Retry-After``, and the client retries with the same ``event_id`` (the
consumer de-duplicates). When a send fails the topics are re-checked in the background: the embedded
broker comes back empty after a restart, and the gateway must recover without being restarted."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import ValidationError

from pickwise_common.errors import DependencyUnavailable, InvalidInput
from pickwise_common.kafka import ALL_TOPICS, TOPIC_INTERACTIONS, JsonProducer, ensure_topics
from pickwise_common.public_api import BatchIn, BatchResult, EventResult
from pickwise_common.schemas import ClickIn, ErrorBody, EventAccepted, EventIn, InteractionEvent
from pickwise_common.telemetry import stage
from pickwise_gateway.deps import ProducerDep

log = logging.getLogger("pickwise.gateway.events")

router = APIRouter(prefix="/v1", tags=["events"])

EVENTS_INGESTED = Counter("pickwise_gateway_events_total", "Interaction events received, by outcome",
                          ["type", "outcome"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid X-API-Key"},
    422: {"model": ErrorBody, "description": "invalid event; `error.fields` names each offending field"},
    429: {"model": ErrorBody, "description": "rate limit of this API key exceeded"},
    503: {"model": ErrorBody, "description": "the broker did not acknowledge in time; retry with the same "
                                             "event_id after Retry-After"},
}


class TopicRepair:
    """After a failed send, the next sends first make sure the topics exist (creating what is missing) and
    only then produce. A restarted embedded broker is empty, and producing to a missing topic auto-creates
    it, which can race with another service's explicit create; checking first keeps the gateway the one
    that creates them while it is the one producing."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.needed = True  # also before the first send: the broker may never have had the topics
        self._lock = asyncio.Lock()

    def poke(self) -> None:
        self.needed = True

    async def ensure(self) -> None:
        if not self.needed:
            return
        async with self._lock:
            if not self.needed:
                return
            try:
                created = await ensure_topics(self.settings, ALL_TOPICS, timeout_s=2.0)
            except Exception as exc:  # the broker is still down: this event is answered 503
                raise DependencyUnavailable(f"kafka unreachable: {type(exc).__name__}", dependency="kafka") from exc
            if created:
                log.warning("re-created missing topics %s", created)
            self.needed = False


def _repair(request: Request) -> TopicRepair:
    repair = getattr(request.app.state, "topic_repair", None)
    if repair is None:
        repair = request.app.state.topic_repair = TopicRepair(request.app.state.settings)
    return repair


async def publish(producer: JsonProducer, event: EventIn, repair: TopicRepair) -> InteractionEvent:
    """Produce one event (key = user_id, trace context in headers); returns after the broker's ack."""
    message = InteractionEvent.from_input(event)
    try:
        await repair.ensure()
        with stage("gateway", "produce_event"):
            await producer.send(TOPIC_INTERACTIONS, message.model_dump(mode="json"), key=message.user_id)
    except DependencyUnavailable:
        EVENTS_INGESTED.labels(message.type.value, "unavailable").inc()
        repair.poke()
        raise
    EVENTS_INGESTED.labels(message.type.value, "accepted").inc()
    return message


@router.post("/events", status_code=202, response_model=EventAccepted, summary="Record an interaction",
             responses=RESPONSES)
async def post_event(event: EventIn, request: Request, producer: ProducerDep) -> EventAccepted:
    """202 with the `event_id` (generated when absent) once the broker has acknowledged the event."""
    message = await publish(producer, event, _repair(request))
    return EventAccepted(event_id=message.event_id)


@router.post("/events/click", status_code=202, response_model=EventAccepted, summary="Record a click",
             responses=RESPONSES)
async def post_click(click: ClickIn, request: Request, producer: ProducerDep) -> EventAccepted:
    """Shorthand for `POST /v1/events` with `type: click`."""
    message = await publish(producer, click.as_event(), _repair(request))
    return EventAccepted(event_id=message.event_id)


def _fields(exc: ValidationError, index: int) -> list[dict[str, str]]:
    return [{"field": ".".join(["events", str(index)] + [str(p) for p in e["loc"]]), "message": e["msg"],
             "type": e["type"]} for e in exc.errors()]


@router.post("/events:batch", response_model=BatchResult, summary="Record up to 500 interactions",
             responses={202: {"model": BatchResult, "description": "every event was acknowledged"},
                        207: {"model": BatchResult, "description": "some events were invalid or not acknowledged"},
                        **RESPONSES})
async def post_batch(body: Annotated[BatchIn, Body()], request: Request, producer: ProducerDep) -> JSONResponse:
    """Each event is validated and produced on its own; the result lists each one's outcome in order.
    202 when all were acknowledged, 207 when some were not (retry those with the same `event_id`), 422
    when none is valid, 503 when the broker acknowledged none."""
    repair = _repair(request)
    results: list[EventResult | None] = [None] * len(body.events)
    valid: list[tuple[int, EventIn]] = []
    for index, raw in enumerate(body.events):
        try:
            event = EventIn.model_validate(raw)
        except ValidationError as exc:
            results[index] = EventResult(index=index, status="invalid", error="invalid event",
                                         fields=_fields(exc, index))
            continue
        # the id is fixed before producing, so a client can retry exactly the ones not acknowledged
        valid.append((index, event.model_copy(update={"event_id": event.event_id or uuid.uuid4()})))
    if not valid:
        fields = [f for r in results if r is not None for f in r.fields]
        raise InvalidInput(f"none of the {len(results)} events is valid", fields=fields)
    outcomes = await asyncio.gather(*(publish(producer, event, repair) for _, event in valid),
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
        raise DependencyUnavailable(f"the broker acknowledged none of {unavailable} events", dependency="kafka",
                                    retry_after_s=1)
    status = 202 if accepted == len(final) else 207
    return JSONResponse(summary.model_dump(mode="json"), status_code=status)
