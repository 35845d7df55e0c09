"""Settings of the event-consumer service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pickwise_common.features import AFFINITY_HALF_LIFE_H, CLICKS_CAP, POP_HOUR_TTL_S, SEEN_TTL_S
from pickwise_common.settings import KafkaSettings, PostgresSettings, RedisSettings, ServiceSettings


class EventConsumerSettings(ServiceSettings, KafkaSettings, RedisSettings, PostgresSettings):
    service_name: str = "event-consumer"
    port: int = 8005
    consumer_group: str = "event-consumer"
    # the event log's commits must survive a Postgres crash: the Kafka offsets are committed right after them,
    # so a commit lost with the server (the embedded one runs synchronous_commit=off) is an event lost
    postgres_synchronous_commit: Literal["on", "off", "local", "remote_write", "remote_apply"] | None = "on"
    consumer_batch_max: int = Field(default=500, ge=1, le=5000, description="messages per poll")
    consumer_poll_ms: int = Field(default=100, ge=1, description="longest wait of one poll")
    # the embedded broker answers a fetch only when its max wait is over, so this bounds the click delay
    consumer_fetch_max_wait_ms: int = Field(default=50, ge=1, le=500)
    # impressions need no sub-second delay (the over-shown counters tolerate one): a longer fetch wait gathers
    # a poll's worth into one batch (one insert, one commit) instead of polling the broker 20 times a second
    impressions_fetch_max_wait_ms: int = Field(default=500, ge=1, le=2000)
    # and at most one impressions batch starts per this interval while there is no backlog (decision 1001c)
    impressions_batch_interval_ms: int = Field(default=1000, ge=0, le=10_000)
    topic_check_interval_s: float = Field(default=2.0, gt=0,
                                          description="how often topics are (re)created if the broker lost them")
    seen_ttl_s: int = SEEN_TTL_S
    pop_hour_ttl_s: int = POP_HOUR_TTL_S
    user_features_ttl_s: int = 30 * 24 * 3600
    # the per-user shown-items counters (impressions) expire this long after the user's last impression
    user_shown_ttl_s: int = Field(default=30 * 24 * 3600, ge=1)
    clicks_cap: int = CLICKS_CAP
    affinity_half_life_h: float = AFFINITY_HALF_LIFE_H
    popularity_max_items: int = Field(default=100_000, ge=1,
                                      description="pop:all and each hourly bucket keep this many top items")
    # a store (Redis, Postgres) down: the partitions pause and the batch is tried again after this back-off,
    # doubling up to the max, instead of climbing the retry ladder into the DLQ (decision 0763)
    store_backoff_initial_ms: int = Field(default=500, ge=1)
    store_backoff_max_ms: int = Field(default=30_000, ge=1)
    store_probe_timeout_ms: int = Field(default=1000, ge=1)
    session_cache_ttl_s: int = 1800
    session_cache_turns: int = 20
