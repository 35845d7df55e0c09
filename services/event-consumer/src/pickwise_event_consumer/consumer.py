"""The consumer loops: the main one over ``events.interactions`` + ``events.sessions`` and one per retry
topic (each waiting until a message's due time), plus the topic keeper that re-creates topics when the
broker comes back empty and then restarts the loops so they rejoin their groups."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.kafka import create_admin, create_consumer, ensure_topics
from pickwise_common.settings import KafkaSettings
from pickwise_event_consumer.metrics import CONSUMER_LAG, STORE_PAUSES
from pickwise_event_consumer.retry_policy import due_ms_of

log = logging.getLogger("pickwise.event_consumer")

Handler = Callable[[Sequence[ConsumerRecord]], Awaitable[Any]]


@dataclass(frozen=True)
class StoreBackoff:
    """How long a loop waits, paused, before trying a batch again while a store is down (doubling)."""

    initial_s: float = 0.5
    max_s: float = 30.0

    def next(self, current_s: float) -> float:
        return self.initial_s if current_s <= 0 else min(self.max_s, current_s * 2)


@dataclass
class LoopState:
    assigned: int = 0
    batches: int = 0
    records: int = 0
    errors: int = 0
    restarts: int = 0
    store_pauses: int = 0
    paused_for_store: bool = False
    last_error: str = ""
    lag: dict[str, int] = field(default_factory=dict)


class ConsumerLoop:
    """One consumer group member. Commits a batch's offsets only after ``handler`` returned for it; when
    the handler raises, it seeks back to the batch start and tries again after a pause (effects are
    idempotent, so a replay is harmless). When the handler reports a store down (DependencyUnavailable),
    the member pauses its partitions and backs off, doubling, until the batch goes through: the events
    wait in the broker instead of climbing the retry ladder into the DLQ."""

    def __init__(self, name: str, settings: KafkaSettings, topics: Sequence[str], *, group_id: str,
                 handler: Handler, batch_max: int = 500, poll_ms: int = 100, wait_due: bool = False,
                 backoff: StoreBackoff | None = None, min_batch_interval_s: float = 0.0, **overrides: Any) -> None:
        self.name = name
        self.settings = settings
        self.topics = list(topics)
        self.group_id = group_id
        self.handler = handler
        self.batch_max = batch_max
        self.poll_ms = poll_ms
        self.wait_due = wait_due
        # a loop whose messages need no sub-second delay (impressions) starts a batch at most this often, so
        # each batch's fixed cost (fetch, insert, offsets check, commit) is shared by more messages
        self.min_batch_interval_s = min_batch_interval_s
        self.overrides = overrides
        self.state = LoopState()
        self.backoff = backoff or StoreBackoff()
        self._backoff_s = 0.0
        self._stop = asyncio.Event()
        self._restart = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lag_checked = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    def request_restart(self) -> None:
        self._restart.set()

    async def stop(self, timeout_s: float = 15.0) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except TimeoutError:
                self._task.cancel()
                log.warning("consumer %s did not stop in %.0f s; cancelled", self.name, timeout_s)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _run(self) -> None:
        while not self._stop.is_set():
            self._restart.clear()
            consumer = create_consumer(self.settings, self.topics, group_id=self.group_id,
                                       client_id=f"{self.group_id}-{self.name}", **self.overrides)
            try:
                # joining a group right after a broker restart can take ~15 s on the embedded broker
                await asyncio.wait_for(consumer.start(), 45.0)
            except Exception as exc:  # broker down or not there yet: try again shortly
                self._note_error(f"start: {exc!r}")
                await _quiet_stop(consumer)
                await self._sleep(1.0)
                continue
            try:
                await self._consume(consumer)
            except Exception as exc:  # broker lost, commit refused, ...: a fresh consumer rejoins
                self._note_error(f"consume: {exc!r}")
                await self._sleep(0.5)
            finally:
                await _quiet_stop(consumer)
                self.state.assigned = 0
            if not self._stop.is_set():
                self.state.restarts += 1

    def _note_error(self, message: str) -> None:
        self.state.errors += 1
        self.state.last_error = message[:300]
        log.warning("consumer %s: %s", self.name, message)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stop.is_set() and not self._restart.is_set():
            batch = await consumer.getmany(timeout_ms=self.poll_ms, max_records=self.batch_max)
            self.state.assigned = len(consumer.assignment())
            records = [r for part in batch.values() for r in part]
            if records:
                started = time.monotonic()
                if self.wait_due and not await self._wait_until_due(records):
                    return  # stopping: the batch was not processed, nothing is committed
                try:
                    await self.handler(records)
                except DependencyUnavailable as exc:  # a store is down: not the messages' fault
                    self._note_error(f"store down: {exc.message}")
                    for tp, part in batch.items():
                        consumer.seek(tp, part[0].offset)
                    await self._pause_while_store_down(consumer)
                    continue
                except Exception as exc:  # could not apply nor route: replay the batch later
                    self._note_error(f"handler: {exc!r}")
                    for tp, part in batch.items():
                        consumer.seek(tp, part[0].offset)
                    await self._sleep(1.0)
                    continue
                offsets = {tp: part[-1].offset + 1 for tp, part in batch.items()}
                if await self._log_was_lost(consumer, offsets):
                    return  # a fresh member rejoins; the batch is stored, its offsets mean nothing any more
                await consumer.commit(offsets)
                self._backoff_s = 0.0
                self.state.batches += 1
                self.state.records += len(records)
                rest_s = self.min_batch_interval_s - (time.monotonic() - started)
                if rest_s > 0 and len(records) < self.batch_max:  # a full batch means a backlog: no pause then
                    await self._sleep(rest_s)
            await self._update_lag(consumer)

    async def _log_was_lost(self, consumer: AIOKafkaConsumer, offsets: dict[Any, int]) -> bool:
        """True when an offset to commit lies past the partition's end on the broker now: the batch came from
        a broker that has since lost its log (the embedded one restarts empty). Committing it would make the
        new log's first messages look consumed, so the member rejoins instead (decision 0771).

        One offset past the end is not a lost log: under sustained load the embedded broker was seen to report
        a partition's end one short of the record it had just served, for as long as no new record arrived;
        treating that as a loss made the member rejoin every few seconds and re-read its uncommitted batch
        without ever committing it (docs/benchmarks.md, "Events at rate"). A lost log restarts near 0."""
        ends = await consumer.end_offsets(list(offsets))
        stale = [f"{tp.topic}[{tp.partition}] {offset} > {ends.get(tp)}" for tp, offset in offsets.items()
                 if ends.get(tp) is not None and offset > ends[tp] + 1]
        if stale:
            self._note_error(f"commit past the log end ({', '.join(stale)}): broker lost its log; rejoining")
            self._restart.set()
        return bool(stale)

    async def _pause_while_store_down(self, consumer: AIOKafkaConsumer) -> None:
        """Pause every assigned partition for the back-off, polling meanwhile (a paused member still polls,
        so it stays within max.poll.interval and keeps its partitions), then resume to try the batch again."""
        self._backoff_s = self.backoff.next(self._backoff_s)
        self.state.store_pauses += 1
        self.state.paused_for_store = True
        STORE_PAUSES.labels(self.group_id).inc()
        partitions = list(consumer.assignment())
        consumer.pause(*partitions)
        try:
            deadline = time.monotonic() + self._backoff_s
            while not self._stop.is_set() and not self._restart.is_set():
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    break
                await consumer.getmany(timeout_ms=int(min(left_s, 0.5) * 1000))  # paused: returns nothing
        finally:
            consumer.resume(*[tp for tp in partitions if tp in consumer.assignment()])
            self.state.paused_for_store = False

    async def _wait_until_due(self, records: Sequence[ConsumerRecord]) -> bool:
        """Retry topics: hold the batch until its latest due time (stages delay by fixed amounts, so the
        records of one poll are due close together). False when asked to stop meanwhile."""
        due_ms = max(due_ms_of(r.headers) for r in records)
        wait_s = due_ms / 1000 - time.time()
        if wait_s > 0:
            await self._sleep(wait_s)
        return not self._stop.is_set()

    async def _update_lag(self, consumer: AIOKafkaConsumer, every_s: float = 1.0) -> None:
        now = time.monotonic()
        if now - self._lag_checked < every_s:
            return
        self._lag_checked = now
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            position = await consumer.position(tp)
            if high < position:
                # the log is shorter than what we consumed: the broker lost it (the embedded one keeps nothing
                # across a restart). A fresh member starts from the new log's beginning.
                self._note_error(f"{tp.topic}[{tp.partition}] high watermark {high} < position {position}: "
                                 "broker lost its log; rejoining")
                self._restart.set()
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - position)
        for topic in self.topics:
            CONSUMER_LAG.labels(self.group_id, topic).set(lag.get(topic, 0))
        self.state.lag = lag


async def _quiet_stop(consumer: AIOKafkaConsumer) -> None:
    try:
        await asyncio.wait_for(consumer.stop(), 5)
    except Exception as exc:  # stopping against a dead broker may fail; the next consumer starts fresh
        log.debug("consumer stop: %r", exc)


class TopicKeeper:
    """Creates the topics at start and whenever the broker has lost them (the embedded broker keeps
    nothing across a restart); after a re-creation the consumer loops restart to rejoin their groups."""

    def __init__(self, settings: KafkaSettings, topics: Sequence[str], loops: Sequence[ConsumerLoop], *,
                 interval_s: float, grace_s: float = 3.0) -> None:
        self.grace_s = grace_s
        self.settings = settings
        self.topics = list(topics)
        self.loops = list(loops)
        self.interval_s = interval_s
        self.ok: bool | None = None  # None until the first check; False while the broker is unreachable
        self.recreations = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def check(self) -> list[str]:
        """Create missing topics. The consumers restart when topics had to be created or the broker was
        unreachable since the last check (whoever re-created the topics, a restarted broker has forgotten
        the groups and their offsets, and positions held by the old members point past its new logs)."""
        created: list[str] = []
        if await self._missing():
            if self.ok is not None:
                # The broker came back empty. Every Kafka client's metadata request auto-creates topics on the
                # embedded broker, and an explicit create racing with that can reset a partition's log (seen
                # with tansu 0.6), so let the producers' side re-create first and create only what is still
                # missing a moment later.
                await self._sleep(self.grace_s)
            created = await ensure_topics(self.settings, self.topics, timeout_s=3.0)
        came_back = self.ok is False
        if created or came_back:
            self.recreations += 1 if created else 0
            log.warning("broker %s: restarting consumers",
                        f"had lost topics {created}, re-created" if created else "reachable again")
            for loop in self.loops:
                loop.request_restart()
        self.ok = True
        return created

    async def _missing(self) -> list[str]:
        admin = create_admin(self.settings)
        try:
            await asyncio.wait_for(admin.start(), 3.0)
            existing = set(await asyncio.wait_for(admin.list_topics(), 3.0))
        finally:
            try:
                await admin.close()
            except Exception as exc:  # closing a client of a dead broker: nothing left to do
                log.debug("admin close: %r", exc)
        return [t for t in self.topics if t not in existing]

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="topic-keeper")

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.check()
            except Exception as exc:  # broker unreachable: keep checking
                self.ok = False
                log.info("topic check failed: %r", exc)
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 5)
            except TimeoutError:
                self._task.cancel()
