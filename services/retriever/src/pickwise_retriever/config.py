"""Settings of the retriever service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from pickwise_common.registry import RegistrySettings
from pickwise_common.settings import (
    CatalogSettings,
    MilvusSettings,
    ModelSettings,
    PostgresSettings,
    RedisSettings,
    ServiceSettings,
)


class RetrieverSettings(ServiceSettings, PostgresSettings, RedisSettings, MilvusSettings, ModelSettings,
                        CatalogSettings, RegistrySettings):
    service_name: str = "retriever"
    port: int = 8001
    # CPU-bound: a few requests at once, a short queue, then a fast 503 the gateway degrades around (decision 0755)
    admission_max_in_flight: int = Field(default=4, ge=0)
    admission_queue_max: int = Field(default=8, ge=0)
    admission_queue_timeout_ms: int = Field(default=200, ge=0)
    # how many items each search (BM25, dense) returns before fusion and grouping
    retrieval_pool_size: int = Field(default=400, ge=10, le=16384)
    # dense search in process over a copy of a catalog's Milvus vectors up to this many items (0 = always in
    # Milvus); larger catalogs search in Milvus (decision 0907, docs/scaling.md)
    dense_in_process_max_items: int = Field(default=100_000, ge=0)
    popularity_backoff_s: float = Field(default=5.0, ge=0)
    # torch intra-op threads for query encoding: one short query gains nothing from more, and on busy
    # cores extra threads spin and wait (p99 measured in docs/scaling.md)
    catalog_refresh_s: float = Field(default=30.0, gt=0, description="how often to look for a new ingest")
    embedding_threads: int = Field(default=1, ge=1, le=64)
    # CF models (decision 0813): pickwise-cf-<catalog>@champion from the model registry (PICKWISE_MLFLOW_TRACKING_URI,
    # decision 1003b), else <cf_models_dir or models_dir>/cf/<catalog>/cf-v<stamp>/; polled every cf_poll_s;
    # cf_models_dir lets a test stack serve its own CF models beside the shared models_dir (ONNX export)
    cf_models_dir: Path | None = None
    cf_poll_s: float = Field(default=3.0, gt=0, le=60, description="how often to look for a newer CF model")
    cf_click_weight: float = Field(default=0.3, ge=0, le=10,
                                   description="weight of the recent clicks' CF neighbours in the feed")
