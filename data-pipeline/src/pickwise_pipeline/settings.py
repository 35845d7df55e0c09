"""Settings of the pipeline commands (env prefix ``PICKWISE_``), built from the shared pieces."""

from __future__ import annotations

from pickwise_common.settings import CatalogSettings, MilvusSettings, ModelSettings, PostgresSettings, RedisSettings


class PipelineSettings(PostgresSettings, RedisSettings, MilvusSettings, ModelSettings, CatalogSettings):
    redis_timeout_ms: int = 5000
    postgres_timeout_ms: int = 30000
    milvus_index_type: str = "FLAT"
