"""Settings of the reranker service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from pathlib import Path

from pickwise_common.settings import RedisSettings, ServiceSettings


class RerankerSettings(ServiceSettings, RedisSettings):
    service_name: str = "reranker"
    port: int = 8002
    reranker_model: str | None = None
    ranker_model_path: Path | None = None
