"""``replay-dlq`` against the real broker: matching dead letters go back to their origin topic with the
payload and trace headers but not the ladder's headers; the reason and age filters and the dry run hold."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from pickwise_common.kafka import JsonProducer, create_consumer, ensure_topics, headers_dict
from pickwise_common.settings import KafkaSettings
from pickwise_pipeline.cli import main
from pickwise_pipeline.replay_dlq import ReplayFilter, replay_dlq

pytestmark = pytest.mark.integration
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _read(settings: KafkaSettings, topic: str, count: int, timeout_s: float) -> list[Any]:
    consumer = create_consumer(settings, [topic], group_id=f"replay-test-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for part in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


@pytest.fixture
async def dead_letters(infra: Any) -> tuple[KafkaSettings, str, str]:
    """A DLQ of its own holding two store-outage dead letters for ``target`` and one poison message."""
    settings = KafkaSettings(kafka_bootstrap=infra.config.kafka_bootstrap)
    prefix = f"replay{uuid.uuid4().hex[:8]}"
    dlq, target = f"{prefix}.dlq", f"{prefix}.interactions"
    await ensure_topics(settings, [dlq, target], partitions=2)
    producer = JsonProducer(settings, service="test")
    ladder = [("pickwise-attempt", b"4"), ("pickwise-error", b"ConnectionError: redis"),
              ("pickwise-origin-topic", target.encode()), ("pickwise-dlq-reason", b"retries exhausted")]
    for n in (1, 2):
        await producer.send_raw(dlq, f'{{"n": {n}}}'.encode(), key=f"user-{n}".encode(),
                                headers=[("traceparent", TRACEPARENT), *ladder])
    await producer.send_raw(dlq, b"{not json", key=b"user-3",
                            headers=[("pickwise-dlq-reason", b"invalid_message: value is not JSON"),
                                     ("pickwise-origin-topic", target.encode())])
    await producer.stop()
    return settings, dlq, target


async def test_dead_letters_of_an_outage_go_back_to_their_topic(dead_letters) -> None:
    settings, dlq, target = dead_letters
    summary = await replay_dlq(settings, dlq_topic=dlq)

    assert (summary.scanned, summary.matched, summary.replayed) == (3, 2, 2)
    replayed = await _read(settings, target, 2, timeout_s=30)
    assert sorted(r.value for r in replayed) == [b'{"n": 1}', b'{"n": 2}']
    headers = headers_dict(replayed[0].headers)
    assert headers["traceparent"] == TRACEPARENT.decode()
    assert headers["pickwise-replayed-from"].startswith(f"{dlq}[")
    assert not {"pickwise-attempt", "pickwise-dlq-reason", "pickwise-error"} & set(headers)


async def test_dry_run_and_filters_publish_nothing(dead_letters) -> None:
    settings, dlq, target = dead_letters
    dry = await replay_dlq(settings, dlq_topic=dlq, dry_run=True, replay_filter=ReplayFilter(reason=None))
    too_young = await replay_dlq(settings, dlq_topic=dlq, replay_filter=ReplayFilter(min_age_s=3600))
    poison = await replay_dlq(settings, dlq_topic=dlq, dry_run=True, replay_filter=ReplayFilter(reason="invalid"))

    assert (dry.matched, dry.replayed) == (3, 0)
    assert (too_young.scanned, too_young.matched, too_young.replayed) == (3, 0, 0)
    assert dict(poison.by_reason) == {"invalid_message": 1}
    assert await _read(settings, target, 1, timeout_s=3) == []


def test_cli_prints_a_json_summary(dead_letters, capsys) -> None:
    settings, dlq, _ = dead_letters
    code = main(["replay-dlq", "--bootstrap", settings.kafka_bootstrap, "--dlq-topic", dlq, "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert '"matched": 2' in out and '"dry_run": true' in out
