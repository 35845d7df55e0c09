"""Prometheus metrics shared by every service (one registry per process, ``pickwise_`` prefix)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
                     1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "pickwise_http_requests_total", "HTTP requests served", ["service", "route", "method", "status"])
HTTP_LATENCY = Histogram(
    "pickwise_http_request_duration_seconds", "HTTP request latency", ["service", "route", "method"],
    buckets=LATENCY_BUCKETS_S)
HTTP_IN_FLIGHT = Gauge(
    "pickwise_http_requests_in_flight", "HTTP requests being served", ["service", "route"])

STAGE_LATENCY = Histogram(
    "pickwise_stage_duration_seconds", "Latency of a stage inside a service", ["service", "stage"],
    buckets=LATENCY_BUCKETS_S)

DOWNSTREAM_LATENCY = Histogram(
    "pickwise_downstream_request_duration_seconds", "Latency of calls to internal services",
    ["service", "target", "outcome"], buckets=LATENCY_BUCKETS_S)
BREAKER_STATE = Gauge(
    "pickwise_circuit_breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)",
    ["service", "target"])
DOWNSTREAM_RETRIES = Counter(
    "pickwise_downstream_retries_total", "Retried calls to internal services", ["service", "target"])

DOWNSTREAM_SATURATED = Counter(
    "pickwise_downstream_saturated_total", "Calls given up waiting for an in-flight slot to a downstream",
    ["service", "target"])

DEGRADATIONS = Counter(
    "pickwise_degradations_total", "Responses served degraded, by reason", ["service", "reason"])

KAFKA_PRODUCE_LATENCY = Histogram(
    "pickwise_kafka_produce_duration_seconds", "Time from send to broker acknowledgement",
    ["service", "topic", "outcome"], buckets=LATENCY_BUCKETS_S)

DEPENDENCY_UP = Gauge(
    "pickwise_dependency_up", "Whether a dependency answered the last readiness check",
    ["service", "dependency"])

SERVICE_INFO = Gauge("pickwise_service_info", "Constant 1, labelled with the service name and version",
                     ["service", "version"])


class PoolCollector:
    """Connection-pool usage of the Postgres (asyncpg) and Redis pools a process opened, read at scrape
    time. Pools are registered by ``resources`` and forgotten when closed."""

    def __init__(self) -> None:
        self._postgres: dict[str, Any] = {}
        self._redis: dict[str, Any] = {}

    def track_postgres(self, service: str, pool: Any) -> None:
        self._postgres[service] = pool

    def track_redis(self, service: str, client: Any) -> None:
        self._redis[service] = client

    def forget(self, service: str, kind: str) -> None:
        (self._postgres if kind == "postgres" else self._redis).pop(service, None)

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        pg_conns, pg_max, rd_conns, rd_max = self._families()
        for service, pool in list(self._postgres.items()):
            size, idle = pool.get_size(), pool.get_idle_size()
            pg_conns.add_metric([service, "in_use"], size - idle)
            pg_conns.add_metric([service, "idle"], idle)
            pg_max.add_metric([service], pool.get_max_size())
        for service, client in list(self._redis.items()):
            pool = client.connection_pool
            # redis-py keeps these as attributes of its ConnectionPool; a BlockingConnectionPool differs
            in_use = len(getattr(pool, "_in_use_connections", ()))
            idle = len(getattr(pool, "_available_connections", ()))
            rd_conns.add_metric([service, "in_use"], in_use)
            rd_conns.add_metric([service, "idle"], idle)
            rd_max.add_metric([service], getattr(pool, "max_connections", 0) or 0)
        yield from (pg_conns, pg_max, rd_conns, rd_max)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("pickwise_postgres_pool_connections", "Postgres pool connections by state",
                              labels=["service", "state"]),
            GaugeMetricFamily("pickwise_postgres_pool_max_connections", "Postgres pool size limit",
                              labels=["service"]),
            GaugeMetricFamily("pickwise_redis_pool_connections", "Redis pool connections by state",
                              labels=["service", "state"]),
            GaugeMetricFamily("pickwise_redis_pool_max_connections", "Redis pool size limit",
                              labels=["service"]),
        )


POOLS = PoolCollector()
REGISTRY.register(POOLS)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_exposition() -> bytes:
    """What ``/metrics`` answers. A service run as several worker processes (``PICKWISE_WORKERS``; its server
    sets ``PROMETHEUS_MULTIPROC_DIR``) answers the sum over its workers — counters and histograms added, gauges
    per worker ``pid`` — whichever worker the scrape reached, plus that worker's pool gauges."""
    if not os.environ.get(MULTIPROC_ENV):
        return generate_latest()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(POOLS)
    return generate_latest(registry)
