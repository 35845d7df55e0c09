"""Kafka client construction (replication, min ISR, TLS/SASL for managed clusters) and the producer's
behaviour while the broker is down: one shared connect / topic-repair attempt, then fast 503s."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from pydantic import ValidationError

from pickwise_common import kafka
from pickwise_common.errors import DependencyUnavailable
from pickwise_common.launcher.processes import free_port
from pickwise_common.settings import KafkaSettings

pytestmark = pytest.mark.unit

MANAGED = {"kafka_bootstrap": "broker-1.example:9093", "kafka_security_protocol": "SASL_SSL",
           "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "pickwise",
           "kafka_sasl_password": "s3cret"}


def test_topics_are_created_with_the_configured_replication_and_min_insync_replicas() -> None:
    settings = KafkaSettings(kafka_replication_factor=3, kafka_min_insync_replicas=2, kafka_topic_partitions=6)
    [topic] = kafka.new_topics(settings, ["events.interactions"])
    assert (topic.name, topic.num_partitions, topic.replication_factor) == ("events.interactions", 6, 3)
    assert topic.topic_configs == {"min.insync.replicas": "2"}


def test_embedded_broker_defaults_are_one_replica() -> None:
    [topic] = kafka.new_topics(KafkaSettings(), ["t"], partitions=2)
    assert (topic.num_partitions, topic.replication_factor, topic.topic_configs) == (2, 1,
                                                                                    {"min.insync.replicas": "1"})


@pytest.mark.parametrize("overrides", [
    {"kafka_replication_factor": 1, "kafka_min_insync_replicas": 2},
    {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"},
])
def test_inconsistent_kafka_settings_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        KafkaSettings(**overrides)


async def test_tls_and_sasl_settings_reach_producer_consumer_and_admin() -> None:
    settings = KafkaSettings(**MANAGED)
    clients = [kafka.create_producer(settings).client,
               kafka.create_consumer(settings, ["t"], group_id="g")._client,
               kafka.create_admin(settings)._client]
    for client in clients:
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert (client._sasl_plain_username, client._sasl_plain_password) == ("pickwise", "s3cret")
        assert isinstance(client._ssl_context, ssl.SSLContext)


def test_credentials_never_show_in_the_settings_repr() -> None:
    assert "s3cret" not in repr(KafkaSettings(**MANAGED))


@pytest.fixture
def counted_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    starts: list[int] = []
    real = kafka.create_producer

    def counting(settings: KafkaSettings, **kwargs: object) -> object:
        starts.append(1)
        return real(settings, **kwargs)

    monkeypatch.setattr(kafka, "create_producer", counting)
    return starts


async def test_concurrent_sends_while_the_broker_is_down_share_one_connect_attempt(counted_starts) -> None:
    settings = KafkaSettings(kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_reconnect_backoff_ms=60_000)
    producer = kafka.JsonProducer(settings, service="test")
    outcomes = await asyncio.gather(*(producer.send("t", {"n": n}) for n in range(10)), return_exceptions=True)
    assert all(isinstance(o, DependencyUnavailable) for o in outcomes)
    assert len(counted_starts) == 1

    with pytest.raises(DependencyUnavailable, match="retrying shortly"):
        await producer.send("t", {"n": 11})  # within the back-off: refused without another connect attempt
    assert len(counted_starts) == 1


async def test_concurrent_sends_share_one_topic_repair_while_the_broker_is_down(
        monkeypatch: pytest.MonkeyPatch) -> None:
    repairs: list[int] = []
    real = kafka.ensure_topics

    async def counting(*args: object, **kwargs: object) -> list[str]:
        repairs.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(kafka, "ensure_topics", counting)
    settings = KafkaSettings(kafka_bootstrap=f"127.0.0.1:{free_port()}", kafka_reconnect_backoff_ms=60_000)
    producer = kafka.JsonProducer(settings, service="test", repair_topics=["t"])
    outcomes = await asyncio.gather(*(producer.send("t", {"n": n}) for n in range(10)), return_exceptions=True)
    assert all(isinstance(o, DependencyUnavailable) for o in outcomes)
    assert len(repairs) == 1
