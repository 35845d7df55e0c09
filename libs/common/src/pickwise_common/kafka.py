"""Kafka helpers: JSON messages with ``schema_version``, W3C trace context in headers, an ``acks=all``
producer that answers only after the broker's acknowledgement, and manual-commit consumers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from opentelemetry import context as otel_context
from opentelemetry.propagate import extract, inject

from pickwise_common.errors import DependencyUnavailable, InvalidMessage
from pickwise_common.metrics import KAFKA_PRODUCE_LATENCY
from pickwise_common.settings import KafkaSettings

log = logging.getLogger("pickwise.kafka")

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

TOPIC_INTERACTIONS = "events.interactions"
TOPIC_SESSIONS = "events.sessions"
TOPIC_IMPRESSIONS = "events.impressions"
TOPIC_RETRY_1S = "events.retry.1s"
TOPIC_RETRY_10S = "events.retry.10s"
TOPIC_RETRY_60S = "events.retry.60s"
TOPIC_DLQ = "events.dlq"
ALL_TOPICS = (TOPIC_INTERACTIONS, TOPIC_SESSIONS, TOPIC_IMPRESSIONS, TOPIC_RETRY_1S, TOPIC_RETRY_10S, TOPIC_RETRY_60S,
              TOPIC_DLQ)

Headers = list[tuple[str, bytes]]


def encode_message(payload: dict[str, Any]) -> bytes:
    """JSON-encode a message, stamping ``schema_version`` when the payload has none."""
    body = {"schema_version": SCHEMA_VERSION, **payload}
    return json.dumps(body, separators=(",", ":"), default=str).encode("utf-8")


def decode_message(raw: bytes | None) -> dict[str, Any]:
    """Parse a message; anything that is not a JSON object of a known schema version is poison."""
    if raw is None:
        raise InvalidMessage("empty message value")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidMessage(f"value is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidMessage(f"value is a JSON {type(body).__name__}, not an object")
    version = body.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise InvalidMessage(f"unsupported schema_version {version!r}")
    return body


def trace_headers(extra: dict[str, str] | None = None) -> Headers:
    """Headers carrying the current trace context (``traceparent``) plus any extra string headers."""
    carrier: dict[str, str] = {}
    inject(carrier)
    carrier.update(extra or {})
    return [(k, v.encode("utf-8")) for k, v in carrier.items()]


def headers_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: (v.decode("utf-8", "replace") if v is not None else "") for k, v in (headers or [])}


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> otel_context.Context:
    """The trace context a producer put in the message headers (for the consumer's span parent)."""
    return extract(headers_dict(headers))


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options every aiokafka client takes (producer, consumer, admin): bootstrap servers and, for
    a managed cluster, TLS (CA file) and SASL credentials."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap,
                               "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None
        options["ssl_context"] = create_ssl_context(cafile=cafile)
    if settings.kafka_security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = (settings.kafka_sasl_username.get_secret_value()
                                          if settings.kafka_sasl_username else None)
        options["sasl_plain_password"] = (settings.kafka_sasl_password.get_secret_value()
                                          if settings.kafka_sasl_password else None)
    return options


def create_producer(settings: KafkaSettings, *, client_id: str | None = None) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=client_id or settings.kafka_client_id,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        linger_ms=0,
    )


def create_admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=settings.kafka_request_timeout_ms)


class _SharedAttempt:
    """One attempt at a time, shared by every caller that arrives while it runs, and a cool-down after a
    failure during which callers fail at once. While the broker is down, N concurrent requests cost one
    connect timeout together (then instant 503s), instead of N timeouts one after another behind a lock."""

    def __init__(self, backoff_s: float) -> None:
        self.backoff_s = backoff_s
        self._task: asyncio.Task[Any] | None = None
        self._failed_at = -1e18
        self._error: DependencyUnavailable | None = None

    async def run(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        if self._task is None:
            if self._error is not None and time.monotonic() - self._failed_at < self.backoff_s:
                raise DependencyUnavailable(f"{self._error.message} (retrying shortly)", dependency="kafka")
            self._task = asyncio.ensure_future(attempt())
            self._task.add_done_callback(self._finished)
        # shield: a cancelled caller (client gone) must not cancel the attempt the others are waiting for
        return await asyncio.shield(self._task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._task = None
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, DependencyUnavailable):
            self._error, self._failed_at = error, time.monotonic()
        else:
            self._error = None


class JsonProducer:
    """One producer per process. ``send`` returns only after the broker acknowledged the write, and raises
    DependencyUnavailable when it did not within the delivery timeout.

    With ``repair_topics``, the producer makes sure those topics exist before its first send and again
    after any failed send, before producing: a restarted embedded broker comes back empty, and producing to
    a missing topic auto-creates it, which can race with another service's explicit create (decision 0501).
    """

    def __init__(self, settings: KafkaSettings, *, service: str, repair_topics: Sequence[str] = ()) -> None:
        self.settings = settings
        self.service = service
        self.repair_topics = tuple(repair_topics)
        self._producer: AIOKafkaProducer | None = None
        backoff_s = settings.kafka_reconnect_backoff_ms / 1000
        self._starting = _SharedAttempt(backoff_s)
        self._repairing = _SharedAttempt(backoff_s)
        self._repair_needed = bool(self.repair_topics)

    async def start(self) -> None:
        """Connect; failure is tolerated (the broker may come later) and retried on the next send."""
        try:
            await self._ensure_started()
        except DependencyUnavailable as exc:
            log.warning("kafka producer not connected yet: %s", exc)

    async def _ensure_started(self) -> AIOKafkaProducer:
        if self._producer is None:
            await self._starting.run(self._start_once)
        if self._producer is None:  # stopped meanwhile (shutdown)
            raise DependencyUnavailable("kafka producer stopped", dependency="kafka")
        return self._producer

    async def _start_once(self) -> None:
        if self._producer is not None:
            return
        producer = create_producer(self.settings, client_id=f"{self.service}-producer")
        try:
            await asyncio.wait_for(producer.start(), self.settings.kafka_request_timeout_ms / 1000)
        except (TimeoutError, KafkaError, OSError) as exc:
            await _quiet_stop(producer)
            raise DependencyUnavailable(f"kafka unreachable: {exc!r}", dependency="kafka") from exc
        self._producer = producer

    async def _repair(self) -> None:
        if self._repair_needed:
            await self._repairing.run(self._repair_once)

    async def _repair_once(self) -> None:
        if not self._repair_needed:
            return
        try:
            created = await ensure_topics(self.settings, self.repair_topics,
                                          timeout_s=self.settings.kafka_request_timeout_ms / 1000)
        except (TimeoutError, KafkaError, OSError) as exc:
            raise DependencyUnavailable(f"kafka unreachable: {type(exc).__name__}", dependency="kafka") from exc
        if created:
            log.warning("re-created missing topics %s", created)
        self._repair_needed = False

    async def send(self, topic: str, value: dict[str, Any], *, key: str | None = None,
                   headers: Headers | None = None) -> Any:
        start = time.perf_counter()
        try:
            metadata = await self._send(topic, encode_message(value), key=key.encode() if key else None,
                                        headers=headers if headers is not None else trace_headers())
        except DependencyUnavailable:
            KAFKA_PRODUCE_LATENCY.labels(self.service, topic, "error").observe(time.perf_counter() - start)
            raise
        KAFKA_PRODUCE_LATENCY.labels(self.service, topic, "ok").observe(time.perf_counter() - start)
        return metadata

    async def send_raw(self, topic: str, value: bytes, *, key: bytes | None = None,
                       headers: Headers | None = None) -> Any:
        """Forward bytes as they are (retry and dead-letter topics keep the original payload)."""
        return await self._send(topic, value, key=key, headers=headers or [])

    async def _send(self, topic: str, value: bytes, *, key: bytes | None, headers: Headers) -> Any:
        try:
            await self._repair()
            producer = await self._ensure_started()
            try:
                return await asyncio.wait_for(producer.send_and_wait(topic, value, key=key, headers=headers),
                                              self.settings.kafka_delivery_timeout_ms / 1000)
            except (TimeoutError, KafkaError, OSError) as exc:
                raise DependencyUnavailable(f"kafka did not acknowledge: {type(exc).__name__}",
                                            dependency="kafka") from exc
        except DependencyUnavailable:
            self._repair_needed = bool(self.repair_topics)
            raise

    async def ping(self) -> dict[str, Any]:
        producer = await self._ensure_started()
        await asyncio.wait_for(producer.client.force_metadata_update(), 1.0)
        return {"brokers": len(producer.client.cluster.brokers())}

    async def stop(self) -> None:
        if self._producer is not None:
            await _quiet_stop(self._producer)
            self._producer = None


async def _quiet_stop(client: Any) -> None:
    try:
        await asyncio.wait_for(client.stop(), 5)
    except Exception as exc:  # stopping a client of a dead broker may fail; there is nothing left to do
        log.debug("kafka client stop: %r", exc)


def create_consumer(settings: KafkaSettings, topics: Iterable[str], *, group_id: str,
                    client_id: str | None = None, **overrides: Any) -> AIOKafkaConsumer:
    """A consumer with manual commits: commit only after the message's effects are stored."""
    options: dict[str, Any] = {
        **client_options(settings),
        "group_id": group_id,
        "client_id": client_id or f"{settings.kafka_client_id}-{group_id}",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # JoinGroup legitimately blocks while the group rebalances, so the request timeout must outlast
        # the rebalance; a short session lets a crashed member's partitions move on quickly.
        "request_timeout_ms": 30000,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 500,
        "rebalance_timeout_ms": 10000,
        "max_poll_interval_ms": 60000,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def new_topics(settings: KafkaSettings, names: Iterable[str], *, partitions: int | None = None) -> list[NewTopic]:
    """Topic specs with the configured partitions, replication factor and ``min.insync.replicas`` (with
    ``acks=all`` the broker refuses a write that fewer replicas than that would hold)."""
    return [NewTopic(name, num_partitions=partitions or settings.kafka_topic_partitions,
                     replication_factor=settings.kafka_replication_factor,
                     topic_configs={"min.insync.replicas": str(settings.kafka_min_insync_replicas)})
            for name in names]


async def ensure_topics(settings: KafkaSettings, topics: Iterable[str] = ALL_TOPICS, *,
                        partitions: int | None = None, timeout_s: float = 10.0) -> list[str]:
    """Create missing topics (idempotent). Returns the names created now."""
    admin = create_admin(settings)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout_s))
        wanted = [t for t in topics if t not in existing]
        if wanted:
            try:
                await asyncio.wait_for(admin.create_topics(new_topics(settings, wanted, partitions=partitions)),
                                       timeout_s)
            except TopicAlreadyExistsError:
                pass
        return wanted
    finally:
        await _quiet_stop(_AdminCloser(admin))


class _AdminCloser:
    def __init__(self, admin: AIOKafkaAdminClient) -> None:
        self.admin = admin

    async def stop(self) -> None:
        await self.admin.close()
