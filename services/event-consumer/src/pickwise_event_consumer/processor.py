"""Applying a batch of Kafka records (interactions, session turns, impressions): decode (poison -> DLQ),
Postgres first, then the Redis script, and route what failed to the next retry topic. Offsets are committed
by the caller only after this returns, i.e. after both stores hold every record's effect (or the record sits
on a retry/dead-letter topic)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace as otel_trace
from pydantic import ValidationError
from redis.exceptions import RedisError

from pickwise_common import redis as keys
from pickwise_common.catalogs import UnknownCatalog, catalog_spec
from pickwise_common.errors import DependencyUnavailable, InvalidMessage
from pickwise_common.kafka import (
    TOPIC_IMPRESSIONS,
    TOPIC_INTERACTIONS,
    TOPIC_SESSIONS,
    JsonProducer,
    context_from_headers,
    decode_message,
)
from pickwise_common.schemas import ImpressionEvent, InteractionEvent, SessionEvent
from pickwise_common.telemetry import stage, tracer
from pickwise_event_consumer import event_log
from pickwise_event_consumer.feature_update import FeatureWriter
from pickwise_event_consumer.metrics import (
    EVENT_APPLY_DELAY,
    EVENTS_DEAD_LETTERED,
    EVENTS_PROCESSED,
    EVENTS_RETRIED,
    IMPRESSIONS_STORED,
)
from pickwise_event_consumer.retry_policy import H_ORIGIN, RetryTopics, header, next_route, poison_route

log = logging.getLogger("pickwise.event_consumer")
SERVICE = "event-consumer"


@dataclass(frozen=True)
class Topics:
    interactions: str = TOPIC_INTERACTIONS
    sessions: str = TOPIC_SESSIONS
    impressions: str = TOPIC_IMPRESSIONS
    ladder: RetryTopics = field(default_factory=RetryTopics)

    @property
    def all(self) -> tuple[str, ...]:
        return (self.interactions, self.sessions, self.impressions) + self.ladder.names


@dataclass
class BatchOutcome:
    applied: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0


@dataclass
class _Stage:
    name: str
    start_ns: int
    end_ns: int


def _trace(records: Sequence[ConsumerRecord], topic: str, stages: Sequence[_Stage], outcome: str) -> None:
    """One consumer span per record continuing the producer's trace (``traceparent`` header), with the
    batch's Postgres and Redis stages as child spans (they ran once for the whole batch)."""
    if not stages:
        return
    tr = tracer("pickwise.event-consumer")
    for record in records:
        parent = context_from_headers(record.headers)
        span = tr.start_span(f"consume {topic}", context=parent, start_time=stages[0].start_ns,
                             attributes={"messaging.system": "kafka", "messaging.destination.name": record.topic,
                                         "messaging.kafka.partition": record.partition,
                                         "messaging.kafka.offset": record.offset,
                                         "pickwise.outcome": outcome, "pickwise.batch_size": len(records)})
        child_ctx = otel_trace.set_span_in_context(span, parent)
        for st in stages:
            tr.start_span(st.name, context=child_ctx, start_time=st.start_ns).end(end_time=st.end_ns)
        span.end(end_time=stages[-1].end_ns)


def _delay_s(ts: datetime) -> float:
    return max(0.0, (datetime.now(UTC) - ts).total_seconds())


# What a store that is down raises (connection refused or lost, timeouts); an error a message causes (bad
# text for Postgres, a script error) is none of these, and only a failed probe tells the two cases apart.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, RedisError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError)


class EventProcessor:
    def __init__(self, *, pool: asyncpg.Pool, redis: aioredis.Redis, producer: JsonProducer,
                 features: FeatureWriter, topics: Topics, session_cache_ttl_s: int,
                 session_cache_turns: int, probe_timeout_s: float = 1.0) -> None:
        self.probe_timeout_s = probe_timeout_s
        self.pool = pool
        self.redis = redis
        self.producer = producer
        self.features = features
        self.topics = topics
        self.session_cache_ttl_s = session_cache_ttl_s
        self.session_cache_turns = session_cache_turns

    async def stores_down(self) -> list[str]:
        """The stores that do not answer a trivial command within the probe timeout."""
        down = []
        try:
            await asyncio.wait_for(self.redis.ping(), self.probe_timeout_s)
        except STORE_ERRORS as exc:
            log.warning("redis probe failed: %r", exc)
            down.append("redis")
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), self.probe_timeout_s)
        except (*STORE_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("postgres probe failed: %r", exc)
            down.append("postgres")
        return down

    async def raise_if_store_down(self, cause: BaseException) -> None:
        """DependencyUnavailable when a store is down: the batch waits (the consumer pauses and backs off)
        rather than being routed one by one up the retry ladder into the DLQ."""
        down = await self.stores_down()
        if down:
            raise DependencyUnavailable(f"{', '.join(down)} down ({type(cause).__name__}: {cause})",
                                        dependency=down[0]) from cause

    def origin_of(self, record: ConsumerRecord) -> str:
        return header(record.headers, H_ORIGIN) or record.topic

    async def handle(self, records: Sequence[ConsumerRecord]) -> BatchOutcome:
        """Process records (any mix of topics). Raises only when a record could be neither applied nor
        routed to a retry/dead-letter topic; then nothing may be committed and the batch is redelivered."""
        outcome = BatchOutcome()
        interactions: list[tuple[ConsumerRecord, InteractionEvent]] = []
        sessions: list[tuple[ConsumerRecord, SessionEvent]] = []
        impressions: list[tuple[ConsumerRecord, ImpressionEvent]] = []
        for record in records:
            origin = self.origin_of(record)
            try:
                body = decode_message(record.value)
                if origin == self.topics.interactions:
                    event = InteractionEvent.model_validate(body)
                    catalog_spec(event.catalog)  # an unknown catalog is a poison message: no keys to write
                    interactions.append((record, event))
                elif origin == self.topics.sessions:
                    sessions.append((record, SessionEvent.model_validate(body)))
                elif origin == self.topics.impressions:
                    impression = ImpressionEvent.model_validate(body)
                    catalog_spec(impression.catalog)
                    impressions.append((record, impression))
                else:
                    raise InvalidMessage(f"no handler for topic {origin!r}")
            except (InvalidMessage, UnknownCatalog) as exc:
                await self._dead_letter(record, f"invalid_message: {exc.message}", outcome)
            except ValidationError as exc:
                fields = ", ".join(".".join(str(p) for p in e["loc"]) + f": {e['msg']}" for e in exc.errors()[:5])
                await self._dead_letter(record, f"invalid_event: {fields}", outcome)
        await self._interactions(interactions, outcome)
        await self._sessions(sessions, outcome)
        await self._impressions(impressions, outcome)
        return outcome

    # ------------------------------------------------------------ interactions

    async def _apply_interactions(self, events: Sequence[InteractionEvent]) -> tuple[list[bool], list[_Stage]]:
        # Postgres first: after a crash between the two writes the redelivered event finds its row (a no-op)
        # and applies the Redis update, whose SET NX makes that part happen once too.
        t0 = time.time_ns()
        with stage(SERVICE, "postgres_insert_events", batch_size=len(events)):
            await event_log.insert_events(self.pool, events)
        t1 = time.time_ns()
        with stage(SERVICE, "redis_apply_features", batch_size=len(events)):
            applied = await self.features.apply(events)
        t2 = time.time_ns()
        return applied, [_Stage("postgres.insert events", t0, t1), _Stage("redis.apply_features", t1, t2)]

    async def _interactions(self, pairs: list[tuple[ConsumerRecord, InteractionEvent]],
                            outcome: BatchOutcome) -> None:
        if not pairs:
            return
        try:
            applied, stages = await self._apply_interactions([e for _, e in pairs])
        except Exception as exc:  # a store down, or a record it refuses: find the records that fail on their own
            await self.raise_if_store_down(exc)
            log.warning("batch of %d interactions failed (%s); applying one by one", len(pairs), exc)
            for record, event in pairs:
                try:
                    one, stages = await self._apply_interactions([event])
                except Exception as one_exc:
                    await self.raise_if_store_down(one_exc)
                    await self._retry(record, f"{type(one_exc).__name__}: {one_exc}", outcome)
                    continue
                self._record_applied([(record, event)], one, stages, outcome)
            return
        self._record_applied(pairs, applied, stages, outcome)

    def _record_applied(self, pairs: Sequence[tuple[ConsumerRecord, InteractionEvent]], applied: Sequence[bool],
                        stages: list[_Stage], outcome: BatchOutcome) -> None:
        done_records, dup_records = [], []
        for (record, event), was_applied in zip(pairs, applied, strict=True):
            topic = self.origin_of(record)
            if was_applied:
                outcome.applied += 1
                EVENTS_PROCESSED.labels(topic, "applied").inc()
                EVENT_APPLY_DELAY.observe(_delay_s(event.ts))
                done_records.append(record)
            else:
                outcome.duplicates += 1
                EVENTS_PROCESSED.labels(topic, "duplicate").inc()
                dup_records.append(record)
        _trace(done_records, self.topics.interactions, stages, "applied")
        _trace(dup_records, self.topics.interactions, stages, "duplicate")

    # ------------------------------------------------------------ sessions

    async def _apply_sessions(self, events: Sequence[SessionEvent]) -> tuple[list[int | None], list[_Stage]]:
        t0 = time.time_ns()
        with stage(SERVICE, "postgres_insert_turns", batch_size=len(events)):
            turns = await event_log.insert_turns(self.pool, events)
        t1 = time.time_ns()
        with stage(SERVICE, "redis_session_cache", batch_size=len(events)):
            for session_id in dict.fromkeys(e.session_id for e in events):
                await self._refresh_session_cache(session_id)
        t2 = time.time_ns()
        return turns, [_Stage("postgres.insert session_turns", t0, t1), _Stage("redis.session_cache", t1, t2)]

    async def _refresh_session_cache(self, session_id: str) -> None:
        """Rewrite the cache from Postgres (idempotent, so a redelivery or a crash leaves it right)."""
        turns = await event_log.recent_turns(self.pool, session_id, self.session_cache_turns)
        user_id = await self.pool.fetchval("SELECT user_id FROM sessions WHERE session_id = $1", session_id)
        body = {"session_id": session_id, "user_id": user_id, "turns": turns}
        await self.redis.set(keys.session_key(session_id), json.dumps(body, default=str), ex=self.session_cache_ttl_s)

    async def _sessions(self, pairs: list[tuple[ConsumerRecord, SessionEvent]], outcome: BatchOutcome) -> None:
        if not pairs:
            return
        try:
            turns, stages = await self._apply_sessions([e for _, e in pairs])
        except Exception as exc:  # as for interactions: a store down pauses, a refused record is retried
            await self.raise_if_store_down(exc)
            log.warning("batch of %d session turns failed (%s); applying one by one", len(pairs), exc)
            for record, event in pairs:
                try:
                    one, stages = await self._apply_sessions([event])
                except Exception as one_exc:
                    await self.raise_if_store_down(one_exc)
                    await self._retry(record, f"{type(one_exc).__name__}: {one_exc}", outcome)
                    continue
                self._record_turns([(record, event)], one, stages, outcome)
            return
        self._record_turns(pairs, turns, stages, outcome)

    def _record_turns(self, pairs: Sequence[tuple[ConsumerRecord, SessionEvent]], turns: Sequence[int | None],
                      stages: list[_Stage], outcome: BatchOutcome) -> None:
        for (record, event), turn_no in zip(pairs, turns, strict=True):
            label = "applied" if turn_no is not None else "duplicate"
            if turn_no is not None:
                outcome.applied += 1
                EVENT_APPLY_DELAY.observe(_delay_s(event.ts))
            else:
                outcome.duplicates += 1
            EVENTS_PROCESSED.labels(self.origin_of(record), label).inc()
        _trace([r for r, _ in pairs], self.topics.sessions, stages, "applied")

    # ------------------------------------------------------------ impressions

    async def _apply_impressions(self, events: Sequence[ImpressionEvent]) -> tuple[list[bool], list[_Stage]]:
        # as for interactions: the row first, then the shown counters, whose SET NX mark makes a redelivery
        # (even one after a crash between the two writes) count the items once
        t0 = time.time_ns()
        with stage(SERVICE, "postgres_insert_impressions", batch_size=len(events)):
            inserted = await event_log.insert_impressions(self.pool, events)
        t1 = time.time_ns()
        with stage(SERVICE, "redis_shown_counters", batch_size=len(events)):
            await self.features.apply_impressions(events)
        t2 = time.time_ns()
        stored = []
        for event in events:  # a redelivery within the batch: its first copy was the one inserted
            event_id = str(event.event_id)
            stored.append(event_id in inserted)
            inserted.discard(event_id)
        return (stored, [_Stage("postgres.insert impressions", t0, t1), _Stage("redis.shown_counters", t1, t2)])

    async def _impressions(self, pairs: list[tuple[ConsumerRecord, ImpressionEvent]], outcome: BatchOutcome) -> None:
        if not pairs:
            return
        try:
            stored, stages = await self._apply_impressions([e for _, e in pairs])
        except Exception as exc:  # as for interactions: a store down pauses, a refused record is retried
            await self.raise_if_store_down(exc)
            log.warning("batch of %d impressions failed (%s); applying one by one", len(pairs), exc)
            for record, event in pairs:
                try:
                    one, stages = await self._apply_impressions([event])
                except Exception as one_exc:
                    await self.raise_if_store_down(one_exc)
                    await self._retry(record, f"{type(one_exc).__name__}: {one_exc}", outcome)
                    continue
                self._record_impressions([(record, event)], one, stages, outcome)
            return
        self._record_impressions(pairs, stored, stages, outcome)

    def _record_impressions(self, pairs: Sequence[tuple[ConsumerRecord, ImpressionEvent]], stored: Sequence[bool],
                            stages: list[_Stage], outcome: BatchOutcome) -> None:
        """Counted by the row: ``applied``/``stored`` when this delivery inserted it, ``duplicate`` when it was
        there already (a redelivery, or a replay after a crash between the two writes)."""
        for (record, event), was_stored in zip(pairs, stored, strict=True):
            if was_stored:
                outcome.applied += 1
                EVENT_APPLY_DELAY.observe(_delay_s(event.ts))
            else:
                outcome.duplicates += 1
            EVENTS_PROCESSED.labels(self.origin_of(record), "applied" if was_stored else "duplicate").inc()
            IMPRESSIONS_STORED.labels(event.endpoint, "stored" if was_stored else "duplicate").inc()
        _trace([r for (r, _), s in zip(pairs, stored, strict=True) if s], self.topics.impressions, stages, "applied")
        _trace([r for (r, _), s in zip(pairs, stored, strict=True) if not s], self.topics.impressions, stages,
               "duplicate")

    # ------------------------------------------------------------ failures

    async def _retry(self, record: ConsumerRecord, error: str, outcome: BatchOutcome) -> None:
        route = next_route(self.topics.ladder, source_topic=record.topic, headers=record.headers, error=error,
                           now_ms=int(time.time() * 1000))
        await self.producer.send_raw(route.topic, record.value or b"", key=record.key, headers=route.headers)
        EVENTS_PROCESSED.labels(self.origin_of(record), "failed").inc()
        if route.dead_letter:
            outcome.dead_lettered += 1
            EVENTS_DEAD_LETTERED.labels("retries_exhausted").inc()
            log.error("event dead-lettered after retries: %s", error)
        else:
            outcome.retried += 1
            EVENTS_RETRIED.labels(route.topic).inc()
            log.warning("event sent to %s: %s", route.topic, error)

    async def _dead_letter(self, record: ConsumerRecord, reason: str, outcome: BatchOutcome) -> None:
        route = poison_route(self.topics.ladder, source_topic=record.topic, headers=record.headers, reason=reason)
        await self.producer.send_raw(route.topic, record.value or b"", key=record.key, headers=route.headers)
        outcome.dead_lettered += 1
        EVENTS_PROCESSED.labels(self.origin_of(record), "dead_lettered").inc()
        EVENTS_DEAD_LETTERED.labels(reason.split(":", 1)[0]).inc()
        log.error("poison message from %s[%d]@%d dead-lettered: %s", record.topic, record.partition,
                  record.offset, reason)

