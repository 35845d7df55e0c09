"""When a batch's offsets count as coming from a log the broker has lost (decision 0771): far past the
partition's end, not one past it (the embedded broker can report an end one short of what it served)."""

import pytest
from aiokafka.structs import TopicPartition

from pickwise_common.settings import KafkaSettings
from pickwise_event_consumer.consumer import ConsumerLoop

pytestmark = pytest.mark.unit

TP = TopicPartition("events.interactions", 1)


class Ends:
    def __init__(self, end: int) -> None:
        self.end = end

    async def end_offsets(self, partitions):
        return {tp: self.end for tp in partitions}


async def _handler(records) -> None:
    return None


def _loop() -> ConsumerLoop:
    return ConsumerLoop("main", KafkaSettings(), ["events.interactions"], group_id="g", handler=_handler)


@pytest.mark.parametrize(("commit", "end", "lost"), [
    (27165, 27165, False),   # the usual case: committing the end
    (27165, 27164, False),   # the broker reports its end one short: commit, no rejoin
    (27165, 12, True),       # the broker restarted with an empty log: rejoin
    (100, 98, True),
])
async def test_only_offsets_well_past_the_end_mean_a_lost_log(commit, end, lost) -> None:
    loop = _loop()
    assert await loop._log_was_lost(Ends(end), {TP: commit}) is lost
    assert loop._restart.is_set() is lost
