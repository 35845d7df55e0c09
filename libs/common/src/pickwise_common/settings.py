"""Settings pieces shared by every service (pydantic-settings, env prefix ``PICKWISE_``).

A service's settings class inherits the pieces it needs, e.g.
``class RetrieverSettings(ServiceSettings, MilvusSettings, RedisSettings)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pickwise_common.api_keys import ApiKey, parse_api_keys

ENV_PREFIX = "PICKWISE_"
REPO_ROOT = Path(__file__).resolve().parents[4]


def default_data_root() -> Path:
    """The repository's ``data/`` (catalogs and evaluation sets, provenance in ``data/README.md``)."""
    return REPO_ROOT / "data"


class PickwiseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True,
                                      secrets_dir=None)


class ServiceSettings(PickwiseSettings):
    """What every service process has: where it listens, how it logs and traces, its keys."""

    service_name: str = "pickwise"
    host: str = "127.0.0.1"
    port: int = 8000
    # "local" only where the launcher (make run, the test stack) sets it: plain API keys and the web
    # page's embedded key are accepted there alone
    environment: str = "production"
    log_level: str = "INFO"
    log_json: bool = True
    # Tracing: "none" keeps spans in-process (trace ids still flow), "otlp" exports to otlp_endpoint,
    # "console" prints spans, "file" appends OTLP-JSON-like lines to otel_file_path.
    otel_exporter: Literal["none", "otlp", "console", "file"] = "none"
    otlp_endpoint: str = "http://127.0.0.1:4318"
    otel_file_path: Path = Path(".pickwise/traces.jsonl")
    # JSON key records with sha256 digests, or plain keys in a local environment (pickwise_common.api_keys)
    api_keys: Annotated[list[ApiKey], NoDecode] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    max_body_bytes: int = 256 * 1024
    shutdown_grace_s: float = 10.0
    readiness_timeout_ms: int = 500
    # Admission control of /v1/ (pickwise_common.admission, decision 0755); 0 = unbounded. A request past
    # max_in_flight waits at most admission_queue_timeout_ms, and is refused (503) when admission_queue_max
    # already wait.
    admission_max_in_flight: int = Field(default=0, ge=0)
    admission_queue_max: int = Field(default=32, ge=0)
    admission_queue_timeout_ms: int = Field(default=300, ge=0)
    # Worker processes of this service (uvicorn workers sharing the port; decision 0910). Each worker runs the
    # whole app (its own connections, caches, models); /metrics then sums the workers (Prometheus multiprocess).
    workers: int = Field(default=1, ge=1, le=64)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        return parse_api_keys(value)


class KafkaSettings(PickwiseSettings):
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Real Kafka supports the idempotent producer; the embedded tansu broker does not (InitProducerId fails),
    # so it is a setting and consumers de-duplicate by event_id either way.
    kafka_idempotence: bool = False
    kafka_request_timeout_ms: int = 3000
    kafka_delivery_timeout_ms: int = 2000
    kafka_topic_partitions: int = 3
    # Topics this code creates: 1/1 fits the single embedded broker; a real cluster wants 3/2 (compose, k8s), so
    # an acks=all write survives the loss of one broker and is refused rather than kept on one copy.
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    kafka_client_id: str = "pickwise"
    # Managed Kafka (Confluent Cloud, MSK, Google Managed Kafka): TLS and/or SASL for every client.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: SecretStr | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: Path | None = None
    # after a failed connect or topic repair, sends fail at once (503) for this long instead of each one
    # waiting for its own connect timeout while the broker is down
    kafka_reconnect_backoff_ms: int = Field(default=1000, ge=0)

    @model_validator(mode="after")
    def _check_kafka(self) -> KafkaSettings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError("kafka_min_insync_replicas cannot exceed kafka_replication_factor")
        if self.kafka_security_protocol.startswith("SASL_") and (
                self.kafka_sasl_mechanism is None or self.kafka_sasl_username is None
                or self.kafka_sasl_password is None):
            raise ValueError("a SASL security protocol needs kafka_sasl_mechanism, kafka_sasl_username and "
                             "kafka_sasl_password")
        return self


class RedisSettings(PickwiseSettings):
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_ms: int = 200
    redis_max_connections: int = 50


class PostgresSettings(PickwiseSettings):
    postgres_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    postgres_pool_min: int = 1
    postgres_pool_max: int = 10
    postgres_timeout_ms: int = 2000
    # asyncpg's own connect timeout is 60 s: during an outage every new connection would wait that long
    postgres_connect_timeout_ms: int = Field(default=1000, ge=1)
    # per-connection synchronous_commit (None: the server's). A writer whose commit stands for a promise made
    # to a client (the event log: Kafka offsets are committed after it) sets "on", whatever the server's default
    postgres_synchronous_commit: Literal["on", "off", "local", "remote_write", "remote_apply"] | None = None


class MilvusSettings(PickwiseSettings):
    milvus_uri: str = "http://127.0.0.1:19530"
    milvus_token: SecretStr | None = None
    milvus_collection: str = "items"


class DownstreamSettings(PickwiseSettings):
    """Base URLs of the internal services (the gateway talks to all of them)."""

    retriever_url: str = "http://127.0.0.1:8001"
    reranker_url: str = "http://127.0.0.1:8002"
    generator_url: str = "http://127.0.0.1:8003"
    session_url: str = "http://127.0.0.1:8004"
    http_timeout_ms: int = 2000
    http_retries: int = 2
    http_max_connections: int = 100
    # calls in flight to one downstream; a call waits for a slot within its own time budget
    http_max_in_flight: int = Field(default=32, ge=1)


def default_models_dir() -> Path:
    """Where trained models live (``PICKWISE_MODELS_DIR``): ``<repo>/.pickwise/models``, never committed."""
    return REPO_ROOT / ".pickwise" / "models"


class ModelSettings(PickwiseSettings):
    embedding_model: str = "all-MiniLM-L6-v2"
    # CF artifacts: <models_dir>/cf/<catalog>/cf-v<UTC stamp>/ (pickwise_common.cf)
    models_dir: Path = Field(default_factory=default_models_dir)
    embedding_batch_size: int = 64
    query_cache_size: int = 2048
    # onnx: an ONNX Runtime export built locally under <models_dir>/onnx/ (torch when it cannot be built);
    # torch: sentence-transformers. Same vectors either way (decision 0906, docs/benchmarks.md)
    embedding_backend: Literal["onnx", "torch"] = "onnx"
    # queries through the int8 export (3.9 vs 7.0 CPU-ms, NDCG@10 unchanged); ingest encodes documents in fp32
    embedding_onnx_int8: bool = True


class CatalogSettings(PickwiseSettings):
    data_dir: Path = Field(default_factory=default_data_root)
    catalog_path: Path | None = None

    def resolved_catalog_path(self) -> Path:
        return self.catalog_path or self.data_dir / "flipkart_mobiles.csv"
