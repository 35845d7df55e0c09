"""Prometheus metrics shared by every service (one registry per process, ``pickwise_`` prefix)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
