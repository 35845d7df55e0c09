"""The impressions loop's pacing (decision 1001c): after a batch that did not fill up, the loop waits out the rest
of its minimum interval before polling again; after a full batch (a backlog) it polls at once."""

from types import SimpleNamespace

import pytest

from pickwise_common.settings import KafkaSettings
from pickwise_event_consumer.consumer import ConsumerLoop

pytestmark = pytest.mark.unit


class FakeConsumer:
    """Hands out the given polls, then asks the loop to stop."""

    def __init__(self, loop: ConsumerLoop, polls: list[int]) -> None:
        self.loop = loop
        self.polls = polls
        self.offset = 0
        self.committed: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int):
        if not self.polls:
            self.loop._stop.set()
            return {}
        size = self.polls.pop(0)
        records = [SimpleNamespace(offset=self.offset + i, headers=()) for i in range(size)]
        self.offset += size
        return {("events.impressions", 0): records}

    def assignment(self):
        return {("events.impressions", 0)}

    async def end_offsets(self, partitions):
        return {tp: self.offset for tp in partitions}

    async def commit(self, offsets):
        self.committed.append(offsets[("events.impressions", 0)])


async def run_loop(polls: list[int], *, interval_s: float, batch_max: int) -> tuple[list[float], FakeConsumer]:
    handled: list[int] = []

    async def handler(records) -> None:
        handled.append(len(records))

    loop = ConsumerLoop("impressions", KafkaSettings(), ["events.impressions"], group_id="g", handler=handler,
                        batch_max=batch_max, min_batch_interval_s=interval_s)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    loop._sleep = sleep  # type: ignore[method-assign]
    loop._update_lag = lambda consumer: _nothing()  # type: ignore[method-assign]
    sizes = list(polls)
    consumer = FakeConsumer(loop, polls)
    await loop._consume(consumer)  # type: ignore[arg-type]
    assert handled == [n for n in sizes if n]  # every poll's records reached the handler
    return sleeps, consumer


async def _nothing() -> None:
    return None


async def test_a_batch_short_of_full_waits_out_the_interval_before_the_next_poll() -> None:
    sleeps, consumer = await run_loop([3, 2], interval_s=1.0, batch_max=10)
    assert consumer.committed == [3, 5]
    assert len(sleeps) == 2 and all(0.5 < s <= 1.0 for s in sleeps)


async def test_a_full_batch_is_a_backlog_and_the_next_poll_comes_at_once() -> None:
    sleeps, consumer = await run_loop([10, 10, 4], interval_s=1.0, batch_max=10)
    assert consumer.committed == [10, 20, 24]
    assert len(sleeps) == 1  # only after the last, short batch


async def test_without_an_interval_the_loop_never_waits() -> None:
    sleeps, _ = await run_loop([3, 2], interval_s=0.0, batch_max=10)
    assert sleeps == []
