"""``replay-dlq``: re-publish dead-lettered messages (``events.dlq``) to the topic they came from, after a
store outage or a fixed bug. Safe to run more than once: the consumer de-duplicates by ``event_id``
(decision 0501), so a replayed event that had been applied changes nothing.

The DLQ is read from its start up to its end at the time of the call, without a consumer group (nothing is
committed, the DLQ keeps its messages); ``--reason`` and the age bounds choose what is replayed, and
``--dry-run`` only counts. Replayed messages carry the original payload and trace headers, none of the
retry ladder's ``pickwise-*`` headers (they start the ladder afresh), plus ``pickwise-replayed-from``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from pickwise_common.kafka import TOPIC_DLQ, TOPIC_INTERACTIONS, Headers, JsonProducer, client_options
from pickwise_common.settings import KafkaSettings

H_REASON = "pickwise-dlq-reason"
H_ORIGIN = "pickwise-origin-topic"
H_REPLAYED_FROM = "pickwise-replayed-from"
DEFAULT_REASON = "retries exhausted"


@dataclass(frozen=True)
class ReplayFilter:
    reason: str | None = DEFAULT_REASON  # substring of the DLQ reason, case-insensitive; None: any reason
    min_age_s: float | None = None
    max_age_s: float | None = None

    def matches(self, reason: str, timestamp_ms: int, now_ms: int) -> bool:
        if self.reason is not None and self.reason.lower() not in reason.lower():
            return False
        age_s = (now_ms - timestamp_ms) / 1000
        if self.min_age_s is not None and age_s < self.min_age_s:
            return False
        return self.max_age_s is None or age_s <= self.max_age_s


@dataclass
class ReplaySummary:
    dlq_topic: str
    dry_run: bool
    scanned: int = 0
    matched: int = 0
    replayed: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_target: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"dlq_topic": self.dlq_topic, "dry_run": self.dry_run, "scanned": self.scanned,
                "matched": self.matched, "replayed": self.replayed, "by_reason": dict(self.by_reason),
                "by_target": dict(self.by_target)}


def replay_headers(headers: Any, source: str) -> Headers:
    """The message's own headers (trace context) without the ladder's, plus where it was replayed from."""
    kept = [(k, v) for k, v in headers or () if not k.startswith("pickwise-")]
    return kept + [(H_REPLAYED_FROM, source.encode())]


def _header(headers: Any, name: str) -> str:
    for key, value in headers or ():
        if key == name:
            return (value or b"").decode("utf-8", "replace")
    return ""


async def replay_dlq(settings: KafkaSettings, *, dlq_topic: str = TOPIC_DLQ, target_topic: str | None = None,
                     replay_filter: ReplayFilter = ReplayFilter(), dry_run: bool = False,
                     timeout_s: float = 30.0) -> ReplaySummary:
    """Re-publish the matching DLQ messages to their origin topic (or ``target_topic``)."""
    summary = ReplaySummary(dlq_topic=dlq_topic, dry_run=dry_run)
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                                request_timeout_ms=settings.kafka_request_timeout_ms)
    producer = JsonProducer(settings, service="replay-dlq")
    await asyncio.wait_for(consumer.start(), timeout_s)
    try:
        partitions = [TopicPartition(dlq_topic, p) for p in sorted(consumer.partitions_for_topic(dlq_topic) or ())]
        if not partitions:
            return summary
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        now_ms = int(time.time() * 1000)
        deadline = time.monotonic() + timeout_s

        async def done() -> bool:
            return all([await consumer.position(tp) >= end[tp] for tp in partitions])
        while not await done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {dlq_topic} to its end within {timeout_s:.0f} s")
            batch = await consumer.getmany(*partitions, timeout_ms=500, max_records=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= end[tp]:
                        continue  # dead-lettered after this run started
                    summary.scanned += 1
                    reason = _header(record.headers, H_REASON)
                    if not replay_filter.matches(reason, record.timestamp, now_ms):
                        continue
                    target = target_topic or _header(record.headers, H_ORIGIN) or TOPIC_INTERACTIONS
                    summary.matched += 1
                    summary.by_reason[reason.split(":", 1)[0]] += 1
                    summary.by_target[target] += 1
                    if not dry_run:
                        await producer.send_raw(target, record.value or b"", key=record.key,
                                                headers=replay_headers(record.headers,
                                                                       f"{tp.topic}[{tp.partition}]@{record.offset}"))
                        summary.replayed += 1
    finally:
        await consumer.stop()
        await producer.stop()
    return summary


def replay_command(args: argparse.Namespace) -> int:
    settings = KafkaSettings() if args.bootstrap is None else KafkaSettings(kafka_bootstrap=args.bootstrap)
    summary = asyncio.run(replay_dlq(
        settings, dlq_topic=args.dlq_topic, target_topic=args.target_topic, dry_run=args.dry_run,
        replay_filter=ReplayFilter(reason=None if args.any_reason else args.reason, min_age_s=args.min_age_s,
                                   max_age_s=args.max_age_s)))
    json.dump(summary.as_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("replay-dlq", help="re-publish dead-lettered events to their topic",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=None, help="default: PICKWISE_KAFKA_BOOTSTRAP")
    parser.add_argument("--dlq-topic", default=TOPIC_DLQ)
    parser.add_argument("--target-topic", default=None, help="default: each message's origin topic")
    parser.add_argument("--reason", default=DEFAULT_REASON,
                        help="replay messages whose DLQ reason contains this (default: %(default)r, the store "
                             "outages; invalid messages would only be dead-lettered again)")
    parser.add_argument("--any-reason", action="store_true", help="replay whatever the reason")
    parser.add_argument("--min-age-s", type=float, default=None, help="only messages at least this old")
    parser.add_argument("--max-age-s", type=float, default=None, help="only messages at most this old")
    parser.add_argument("--dry-run", action="store_true", help="count what would be replayed, publish nothing")
    parser.set_defaults(func=replay_command)
