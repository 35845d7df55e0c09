"""Where a failed message goes next: ``events.retry.1s`` -> ``10s`` -> ``60s`` -> ``events.dlq``, with the
error, the attempt count, the due time and the original topic in headers (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pickwise_common.kafka import TOPIC_DLQ, TOPIC_RETRY_1S, TOPIC_RETRY_10S, TOPIC_RETRY_60S, Headers

H_ATTEMPT = "pickwise-attempt"
H_ERROR = "pickwise-error"
H_DUE_MS = "pickwise-due-ms"
H_ORIGIN = "pickwise-origin-topic"
H_DLQ_REASON = "pickwise-dlq-reason"
OWN_HEADERS = frozenset({H_ATTEMPT, H_ERROR, H_DUE_MS, H_ORIGIN, H_DLQ_REASON})


@dataclass(frozen=True)
class RetryTopics:
    """The retry ladder: (topic, delay in seconds) in order, then the dead-letter topic."""

    stages: tuple[tuple[str, float], ...] = ((TOPIC_RETRY_1S, 1.0), (TOPIC_RETRY_10S, 10.0),
                                             (TOPIC_RETRY_60S, 60.0))
    dlq: str = TOPIC_DLQ

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.stages) + (self.dlq,)


@dataclass(frozen=True)
class Route:
    topic: str
    headers: Headers
    dead_letter: bool


def header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode("utf-8", "replace") if value is not None else ""
    return None


def attempt_of(headers: Sequence[tuple[str, bytes]] | None) -> int:
    """How many times the message has failed so far (0 for a message from its original topic)."""
    try:
        return int(header(headers, H_ATTEMPT) or 0)
    except ValueError:
        return 0


def due_ms_of(headers: Sequence[tuple[str, bytes]] | None) -> int:
    try:
        return int(header(headers, H_DUE_MS) or 0)
    except ValueError:
        return 0


def _carry(headers: Sequence[tuple[str, bytes]] | None) -> Headers:
    """The original headers (trace context) without our routing headers."""
    return [(k, v) for k, v in headers or () if k not in OWN_HEADERS]


def next_route(ladder: RetryTopics, *, source_topic: str, headers: Sequence[tuple[str, bytes]] | None,
               error: str, now_ms: int) -> Route:
    """The route of a message whose processing failed: the next retry stage, or the DLQ after the last."""
    attempt = attempt_of(headers) + 1
    origin = header(headers, H_ORIGIN) or source_topic
    base = _carry(headers) + [(H_ATTEMPT, str(attempt).encode()), (H_ERROR, error[:500].encode("utf-8")),
                              (H_ORIGIN, origin.encode())]
    if attempt <= len(ladder.stages):
        topic, delay_s = ladder.stages[attempt - 1]
        return Route(topic, base + [(H_DUE_MS, str(now_ms + int(delay_s * 1000)).encode())], False)
    return Route(ladder.dlq, base + [(H_DLQ_REASON, b"retries exhausted")], True)


def poison_route(ladder: RetryTopics, *, source_topic: str, headers: Sequence[tuple[str, bytes]] | None,
                 reason: str) -> Route:
    """A message that can never be processed goes straight to the DLQ with the reason."""
    origin = header(headers, H_ORIGIN) or source_topic
    return Route(ladder.dlq, _carry(headers) + [(H_DLQ_REASON, reason[:500].encode("utf-8")),
                                                (H_ERROR, reason[:500].encode("utf-8")),
                                                (H_ATTEMPT, str(attempt_of(headers)).encode()),
                                                (H_ORIGIN, origin.encode())], True)
