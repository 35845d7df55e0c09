"""Settings of the event-consumer service (env prefix ``PICKWISE_``)."""

from __future__ import annotations


from pickwise_common.settings import KafkaSettings, PostgresSettings, RedisSettings, ServiceSettings


class EventConsumerSettings(ServiceSettings, KafkaSettings, RedisSettings, PostgresSettings):
    service_name: str = "event-consumer"
    port: int = 8005
    consumer_group: str = "event-consumer"
