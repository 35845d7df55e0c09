"""Publishing one turn of a session to ``events.sessions`` (key = session_id) after the answer went out:
fire-and-forget, so a slow or absent broker never delays or fails a recommendation."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import Counter

from pickwise_common.kafka import TOPIC_SESSIONS
from pickwise_common.public_api import RecommendationRequest, RecommendationResponse
from pickwise_common.schemas import SessionEvent

log = logging.getLogger("pickwise.gateway.session_events")

PUBLISHED = Counter("pickwise_gateway_session_events_total", "Session events handed to Kafka, by outcome",
                    ["outcome"])


def session_event(request: RecommendationRequest, response: RecommendationResponse) -> SessionEvent | None:
    if not request.session_id:
        return None
    return SessionEvent(
        session_id=request.session_id, user_id=request.user_id, request_id=response.request_id,
        query=request.query, item_ids=[i.item_id for i in response.items],
        answer=response.answer.summary if response.answer is not None else None,
        parsed=response.parsed.model_dump(mode="json", exclude_defaults=True), variant=response.variant)


class SessionEventPublisher:
    def __init__(self, producer: Any | None) -> None:
        self.producer = producer
        self._tasks: set[asyncio.Task[None]] = set()

    def publish(self, request: RecommendationRequest, response: RecommendationResponse) -> None:
        event = session_event(request, response)
        if event is None:
            return
        if self.producer is None:
            PUBLISHED.labels("no_producer").inc()
            return
        task = asyncio.get_running_loop().create_task(self._send(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, event: SessionEvent) -> None:
        try:
            await self.producer.send(TOPIC_SESSIONS, event.model_dump(mode="json"), key=event.session_id)
        except Exception as exc:  # recorded and dropped: a session turn is not worth failing anything for
            PUBLISHED.labels("error").inc()
            log.warning("session event for %s not published: %s", event.session_id, exc)
        else:
            PUBLISHED.labels("ok").inc()

    async def drain(self, timeout_s: float = 3.0) -> None:
        """Wait (bounded) for in-flight publications at shutdown."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)
