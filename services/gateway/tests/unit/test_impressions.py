"""Impression building and the bounded queue between the request path and the broker (decision 1001)."""

import asyncio
import json

import pytest

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.kafka import TOPIC_IMPRESSIONS
from pickwise_common.public_api import RecommendationResponse
from pickwise_common.schemas import Constraints, ImpressionEvent, ParsedQuery
from pickwise_gateway import impressions
from pickwise_gateway.impressions import IMPRESSIONS, ImpressionLog, constraints_summary, search_impression

pytestmark = pytest.mark.unit


def count(outcome: str) -> float:
    return IMPRESSIONS.labels(outcome)._value.get()


def event(request_id: str = "r1", **overrides) -> ImpressionEvent:
    return ImpressionEvent(request_id=request_id, endpoint="search", **overrides)


class Producer:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[tuple[str, dict, str | None]] = []
        self.attempts = 0

    async def send_raw(self, topic, value, *, key=None, headers=None):
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise DependencyUnavailable("kafka did not acknowledge", dependency="kafka")
        self.sent.append((topic, json.loads(value), key.decode()))


def test_constraints_summary_names_what_drift_watches() -> None:
    parsed = Constraints(brands=["Samsung", "apple"], price_max_inr=20000, ram_gb_min=8, price_bands=["mid"])
    assert constraints_summary(parsed) == {"brands": ["apple", "samsung"], "price_band": "mid",
                                           "price_max": 20000, "ram_gb_min": 8}
    assert constraints_summary(None) == {"brands": []}
    assert constraints_summary(Constraints(price_bands=["budget", "mid"]))["price_band"] == ["budget", "mid"]


def test_search_impression_holds_the_page_as_shown() -> None:
    response = RecommendationResponse.model_validate({
        "request_id": "req-1", "catalog": "flipkart", "query": "samsung under 20k",
        "items": [{"item_id": i, "title": i, "price": 1.0, "score": s, "rank": r + 1}
                  for r, (i, s) in enumerate([("x", 0.9), ("y", 0.8), ("z", 0.7)])],
        "parsed": ParsedQuery(brands=["samsung"]).model_dump(), "variant": "B", "degraded": True,
        "degradation_reasons": ["llm_offline"], "timings_ms": {"total": 42.5},
        "model_versions": {"ranker": "pickwise-ranker/3@champion"}})
    got = search_impression(response, endpoint="search", user_id="u1", session_id=None, experiment="ab",
                            explore={"pair": 0, "swapped": 1}, teams=["A", "B", "A"])
    assert (got.request_id, got.endpoint, got.user_id, got.variant, got.experiment) == ("req-1", "search", "u1",
                                                                                        "B", "ab")
    assert [(i.item_id, i.position, i.score, i.team) for i in got.items] == [
        ("x", 0, 0.9, "A"), ("y", 1, 0.8, "B"), ("z", 2, 0.7, "A")]
    assert got.model_versions == {"ranker": "pickwise-ranker/3@champion"}
    assert got.explore == {"pair": 0, "swapped": 1} and got.interleaving
    assert (got.latency_ms, got.status, got.degraded) == (42.5, 200, ["llm_offline"])
    assert got.constraints == {"brands": ["samsung"]}


def test_list_impression_skips_entries_that_break_the_shape() -> None:
    body = {"item_id": "seed", "model_version": "cf-v1",
            "items": [{"item": {"item_id": "a"}, "lift": 3.5}, {"oops": 1}, {"item": {"item_id": "b"}}]}
    got = impressions.list_impression(body, request_id="r", endpoint="bought_together", catalog="retail",
                                      list_field="items", score_field="lift", latency_ms=3.0)
    assert [(i.item_id, i.position, i.score) for i in got.items] == [("a", 0, 3.5), ("b", 1, None)]
    assert got.model_versions == {"cf": "cf-v1"} and got.query == "seed"


def test_without_a_producer_impressions_are_counted_not_queued() -> None:
    log = ImpressionLog(queue_max=10)
    before = count("no_producer")
    log.record(event())
    assert count("no_producer") == before + 1
    assert log.queue.qsize() == 0


async def test_a_full_queue_drops_and_counts_and_never_blocks() -> None:
    log = ImpressionLog(queue_max=3, producer=Producer())  # no drain task: nothing leaves the queue
    before = count("dropped_queue_full")
    for i in range(10):
        log.record(event(f"r{i}"))
    assert log.queue.qsize() == 3
    assert count("dropped_queue_full") == before + 7


async def test_drain_publishes_each_event_keyed_by_user_else_session_else_request() -> None:
    producer = Producer()
    log = ImpressionLog(queue_max=100)
    log.start(producer)
    before = count("published")
    log.record(event("r1", user_id="u1", session_id="s1"))
    log.record(event("r2", session_id="s2"))
    log.record(event("r3"))
    await log.stop(timeout_s=5)
    assert sorted((t, k, v["request_id"]) for t, v, k in producer.sent) == [
        (TOPIC_IMPRESSIONS, "r3", "r3"), (TOPIC_IMPRESSIONS, "s2", "r2"), (TOPIC_IMPRESSIONS, "u1", "r1")]
    assert count("published") == before + 3


async def test_a_failed_send_is_retried_then_published(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impressions, "RETRY_BACKOFF_S", 0.0)
    producer = Producer(failures=2)
    log = ImpressionLog(queue_max=10, send_attempts=3)
    log.start(producer)
    log.record(event())
    await log.stop(timeout_s=5)
    assert producer.attempts == 3 and len(producer.sent) == 1


async def test_a_send_failing_every_attempt_is_counted_as_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impressions, "RETRY_BACKOFF_S", 0.0)
    producer = Producer(failures=100)
    log = ImpressionLog(queue_max=10, send_attempts=2)
    log.start(producer)
    before = count("error")
    log.record(event())
    await log.stop(timeout_s=5)
    assert producer.attempts == 2 and producer.sent == []
    assert count("error") == before + 1


class StuckProducer:
    async def send_raw(self, topic, value, *, key=None, headers=None):
        await asyncio.Event().wait()


async def test_shutdown_is_bounded_and_counts_what_it_could_not_send() -> None:
    log = ImpressionLog(queue_max=10)
    log.start(StuckProducer())
    before = count("error") + count("dropped_queue_full")
    for i in range(4):
        log.record(event(f"r{i}"))
    await log.stop(timeout_s=0.05)
    assert count("error") + count("dropped_queue_full") == before + 4


class RoundProducer:
    """Records which events were handed over in the same loop round (one produce request at the broker)."""

    def __init__(self) -> None:
        self.rounds: list[list[str]] = []
        self._open: list[str] | None = None

    async def send_raw(self, topic, value, *, key=None, headers=None):
        if self._open is None:
            self._open = []
            self.rounds.append(self._open)
            asyncio.get_running_loop().call_soon(self._close)
        self._open.append(json.loads(value)["request_id"])

    def _close(self) -> None:
        self._open = None


async def test_the_linger_gathers_impressions_recorded_meanwhile_into_one_send_round() -> None:
    producer = RoundProducer()
    log = ImpressionLog(queue_max=100, linger_s=0.05)
    log.start(producer)
    log.record(event("r1"))
    await asyncio.sleep(0.01)  # the drain task took r1 and lingers
    log.record(event("r2"))
    log.record(event("r3"))
    await log.stop(timeout_s=5)
    assert producer.rounds == [["r1", "r2", "r3"]]


async def test_without_a_linger_each_impression_goes_out_as_it_comes() -> None:
    producer = RoundProducer()
    log = ImpressionLog(queue_max=100, linger_s=0.0)
    log.start(producer)
    log.record(event("r1"))
    await asyncio.sleep(0.01)
    log.record(event("r2"))
    await log.stop(timeout_s=5)
    assert producer.rounds == [["r1"], ["r2"]]
