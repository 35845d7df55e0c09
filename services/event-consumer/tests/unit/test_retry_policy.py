"""The retry ladder as pure routing: next stage with attempt and due time, DLQ after the last stage."""

from __future__ import annotations

import pytest

from pickwise_common.kafka import TOPIC_DLQ, TOPIC_INTERACTIONS, TOPIC_RETRY_1S, TOPIC_RETRY_10S, TOPIC_RETRY_60S
from pickwise_event_consumer.retry_policy import (
    RetryTopics,
    attempt_of,
    due_ms_of,
    header,
    next_route,
    poison_route,
)

pytestmark = pytest.mark.unit
LADDER = RetryTopics()
TRACE = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]


def _climb(times: int):
    headers = TRACE
    route = None
    for _ in range(times):
        route = next_route(LADDER, source_topic=TOPIC_INTERACTIONS, headers=headers, error="boom", now_ms=1000)
        headers = route.headers
    return route


def test_first_failure_goes_to_the_1s_topic_due_one_second_later() -> None:
    route = _climb(1)
    assert route.topic == TOPIC_RETRY_1S
    assert attempt_of(route.headers) == 1
    assert due_ms_of(route.headers) == 2000
    assert header(route.headers, "traceparent") == TRACE[0][1].decode()
    assert header(route.headers, "pickwise-origin-topic") == TOPIC_INTERACTIONS


@pytest.mark.parametrize(("failures", "topic", "due_ms"), [(2, TOPIC_RETRY_10S, 11000), (3, TOPIC_RETRY_60S, 61000)])
def test_later_failures_climb_the_ladder(failures: int, topic: str, due_ms: int) -> None:
    route = _climb(failures)
    assert (route.topic, due_ms_of(route.headers), route.dead_letter) == (topic, due_ms, False)


def test_fourth_failure_is_dead_lettered_with_attempts_and_error() -> None:
    route = _climb(4)
    assert route.topic == TOPIC_DLQ and route.dead_letter
    assert attempt_of(route.headers) == 4
    assert header(route.headers, "pickwise-error") == "boom"
    assert header(route.headers, "pickwise-dlq-reason") == "retries exhausted"
    assert [k for k, _ in route.headers].count("pickwise-attempt") == 1


def test_poison_goes_straight_to_the_dlq_with_its_reason() -> None:
    route = poison_route(LADDER, source_topic=TOPIC_INTERACTIONS, headers=None, reason="invalid_message: not JSON")
    assert route.topic == TOPIC_DLQ
    assert header(route.headers, "pickwise-dlq-reason") == "invalid_message: not JSON"
