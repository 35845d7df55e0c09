"""Prometheus metrics of the event path's consumer side (defined once, module level)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMER_LAG = Gauge(
    "pickwise_consumer_lag_messages", "Messages not yet consumed (high watermark - position), per topic",
    ["group", "topic"])
EVENTS_PROCESSED = Counter(
    "pickwise_events_processed_total", "Messages handled, by outcome (applied, duplicate, failed)",
    ["topic", "outcome"])
EVENTS_RETRIED = Counter(
    "pickwise_events_retried_total", "Messages sent to a retry topic", ["topic"])
EVENTS_DEAD_LETTERED = Counter(
    "pickwise_events_dead_lettered_total", "Messages sent to the dead-letter topic", ["reason"])
EVENT_APPLY_DELAY = Histogram(
    "pickwise_event_apply_delay_seconds", "From the event's ts to its effects being stored",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0))
STORE_PAUSES = Counter(
    "pickwise_consumer_store_pauses_total", "Times a consumer paused its partitions because a store was down",
    ["group"])
IMPRESSIONS_STORED = Counter(
    "pickwise_impressions_stored_total",
    "Impression messages handled, by the response's endpoint and outcome (stored now, duplicate of a stored one)",
    ["endpoint", "outcome"])
