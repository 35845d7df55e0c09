"""Impression logging (decision 1001): what each search/recommendation/feed/similar/bought-together response
showed, as an ``ImpressionEvent`` on ``events.impressions``. The request path only builds the event and puts it
on a bounded queue (``put_nowait``); one background task drains the queue in batches to the broker (waiting
``linger_s`` after the first event of a batch, so one produce request carries several), retrying a failed send a
bounded number of times. Every event ends in exactly one outcome of
``pickwise_gateway_impressions_total``: published, dropped_queue_full, no_producer or error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import Counter

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.kafka import TOPIC_IMPRESSIONS
from pickwise_common.public_api import FeedResponse, RecommendationResponse
from pickwise_common.schemas import Constraints, ImpressionEvent, ImpressionItem

log = logging.getLogger("pickwise.gateway.impressions")

OUTCOMES = ("published", "dropped_queue_full", "no_producer", "error")
IMPRESSIONS = Counter("pickwise_gateway_impressions_total", "Impressions of the gateway's responses, by outcome",
                      ["outcome"])
for _outcome in OUTCOMES:
    IMPRESSIONS.labels(_outcome)
BATCH_MAX = 64             # events sent concurrently by the drain task (the producer batches them per partition);
# their serialisation runs back to back on the loop, about a millisecond for a full batch
RETRY_BACKOFF_S = 0.2


def constraints_summary(parsed: Constraints | None) -> dict[str, Any]:
    """The constraints drift watches: brands (always, lower-cased and sorted), and price_band (one band, or the
    list when several), price_min, price_max, ram_gb_min, storage_gb_min when set."""
    if parsed is None:
        return {"brands": []}
    out: dict[str, Any] = {"brands": sorted({b.strip().lower() for b in parsed.brands if b.strip()})}
    if parsed.price_bands:  # one band as a string, several as their list (drift reads the first)
        bands = list(dict.fromkeys(parsed.price_bands))
        out["price_band"] = bands[0] if len(bands) == 1 else bands
    for name, value in (("price_min", parsed.price_min_inr), ("price_max", parsed.price_max_inr),
                        ("ram_gb_min", parsed.ram_gb_min), ("storage_gb_min", parsed.storage_gb_min)):
        if value is not None:
            out[name] = value
    return out


def shown_items(scored: Iterable[tuple[str, float | None]], teams: Sequence[str | None] = ()) -> list[ImpressionItem]:
    """(item id, score) pairs in shown order as impression items with 0-based positions."""
    return [ImpressionItem(item_id=item_id, position=position, score=score,
                           team=teams[position] if position < len(teams) else None)  # type: ignore[arg-type]
            for position, (item_id, score) in enumerate(scored)]


def search_impression(response: RecommendationResponse, *, endpoint: str, user_id: str | None,
                      session_id: str | None, experiment: str | None, explore: dict[str, int] | None = None,
                      teams: Sequence[str | None] = (), status: int = 200) -> ImpressionEvent:
    """The impression of a search or recommendations response (items as the page showed them)."""
    return ImpressionEvent(
        request_id=response.request_id, endpoint=endpoint, catalog=response.catalog, user_id=user_id,  # type: ignore[arg-type]
        session_id=session_id, query=response.query, constraints=constraints_summary(response.parsed),
        experiment=experiment, variant=response.variant, model_versions=dict(response.model_versions),
        items=shown_items(((i.item_id, i.score) for i in response.items), teams), explore=explore,
        interleaving=any(t is not None for t in teams), latency_ms=response.timings_ms.get("total"),
        status=status, degraded=list(response.degradation_reasons))


def failed_impression(*, request_id: str, endpoint: str, catalog: str, user_id: str | None,
                      session_id: str | None, query: str | None, experiment: str | None, variant: str | None,
                      status: int, latency_ms: float) -> ImpressionEvent:
    """The impression of a request that failed (no items): counted by the rollout's error-rate guard."""
    return ImpressionEvent(request_id=request_id, endpoint=endpoint, catalog=catalog, user_id=user_id,  # type: ignore[arg-type]
                           session_id=session_id, query=query, experiment=experiment, variant=variant,
                           status=status, latency_ms=latency_ms)


def list_impression(body: dict[str, Any], *, request_id: str, endpoint: str, catalog: str, list_field: str,
                    score_field: str, latency_ms: float) -> ImpressionEvent:
    """The impression of a proxied item list (``similar``: candidates by fused score; ``bought_together``: items
    by lift); entries that break the shape are left out, never raised on."""
    scored: list[tuple[str, float | None]] = []
    for entry in body.get(list_field) or ():
        item = entry.get("item") if isinstance(entry, dict) else None
        if isinstance(item, dict) and item.get("item_id") is not None:
            score = entry.get(score_field)
            scored.append((str(item["item_id"]), float(score) if isinstance(score, (int, float)) else None))
    version = body.get("model_version")
    return ImpressionEvent(request_id=request_id, endpoint=endpoint, catalog=catalog, query=body.get("item_id"),  # type: ignore[arg-type]
                           model_versions={"cf": str(version)} if version else {}, items=shown_items(scored),
                           latency_ms=latency_ms)


def feed_impression(response: FeedResponse, *, request_id: str, latency_ms: float) -> ImpressionEvent:
    """The impression of a user's feed (``model_versions["cf"]`` = the CF model that answered, if one did)."""
    return ImpressionEvent(
        request_id=request_id, endpoint="feed", catalog=response.catalog, user_id=response.user_id,
        model_versions={"cf": response.model_version} if response.model_version else {},
        items=shown_items((f.item.item_id, f.score) for f in response.items), latency_ms=latency_ms,
        degraded=list(response.degradation_reasons))


def key_of(event: ImpressionEvent) -> str:
    return event.user_id or event.session_id or event.request_id


class ImpressionLog:
    """The bounded queue and its drain task. ``record`` never blocks and never raises."""

    def __init__(self, *, queue_max: int, send_attempts: int = 3, producer: Any | None = None,
                 enabled: bool = True, linger_s: float = 0.0) -> None:
        self.enabled = enabled  # off only to measure what logging costs (make bench); callers skip building
        self.producer = producer
        self.send_attempts = send_attempts
        self.linger_s = linger_s
        self.queue: asyncio.Queue[ImpressionEvent] = asyncio.Queue(maxsize=queue_max)
        self._task: asyncio.Task[None] | None = None

    def record(self, event: ImpressionEvent) -> None:
        if self.producer is None:
            IMPRESSIONS.labels("no_producer").inc()
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            IMPRESSIONS.labels("dropped_queue_full").inc()

    def start(self, producer: Any | None) -> None:
        self.producer = producer
        if producer is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain_forever(), name="impressions-drain")

    async def _drain_forever(self) -> None:
        while True:
            batch = [await self.queue.get()]
            if self.linger_s > 0 and self.queue.qsize() + 1 < BATCH_MAX:
                # gather what arrives meanwhile: one produce request (and one broker round) for several events
                # instead of one each, which is most of what an impression costs the broker and this process
                await asyncio.sleep(self.linger_s)
            while len(batch) < BATCH_MAX and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            await asyncio.gather(*(self._send(event) for event in batch))
            for _ in batch:
                self.queue.task_done()

    async def _send(self, event: ImpressionEvent) -> None:
        try:
            await self._send_once(event)
        except asyncio.CancelledError:  # cut off mid-send at shutdown: its fate at the broker is unknown
            IMPRESSIONS.labels("error").inc()
            raise

    async def _send_once(self, event: ImpressionEvent) -> None:
        # pydantic's Rust serializer: about six times cheaper than model_dump + json.dumps, and this runs on the
        # event loop (the event carries its own schema_version)
        payload = event.model_dump_json().encode()
        key = key_of(event).encode()
        for attempt in range(1, self.send_attempts + 1):
            try:
                await self.producer.send_raw(TOPIC_IMPRESSIONS, payload, key=key)  # type: ignore[union-attr]
            except DependencyUnavailable as exc:
                if attempt == self.send_attempts:
                    IMPRESSIONS.labels("error").inc()
                    log.warning("impression %s not published after %d attempts: %s", event.request_id, attempt,
                                exc)
                    return
                await asyncio.sleep(RETRY_BACKOFF_S * attempt)
            except Exception as exc:  # an impression is never worth crashing the drain task for: counted
                IMPRESSIONS.labels("error").inc()
                log.warning("impression %s not published: %r", event.request_id, exc)
                return
            else:
                IMPRESSIONS.labels("published").inc()
                return

    async def stop(self, timeout_s: float) -> None:
        """Drain what is queued (bounded by ``timeout_s``), then stop; what is left is counted as dropped."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.queue.join(), timeout_s)
        except TimeoutError:
            log.warning("shutdown: %d impressions not drained in %.1f s", self.queue.qsize(), timeout_s)
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        left = self.queue.qsize()
        while not self.queue.empty():
            self.queue.get_nowait()
            self.queue.task_done()
        if left:
            IMPRESSIONS.labels("dropped_queue_full").inc(left)
