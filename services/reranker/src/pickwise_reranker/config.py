"""Settings of the reranker service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from pickwise_common.registry import RANKER_MODEL, RegistrySettings
from pickwise_common.settings import REPO_ROOT, RedisSettings, ServiceSettings


def default_ranker_dir() -> Path:
    return REPO_ROOT / "models" / "ranker"


class RerankerSettings(ServiceSettings, RedisSettings, RegistrySettings):
    service_name: str = "reranker"
    port: int = 8002
    # CPU-bound: a few requests at once, a short queue, then a fast 503 the gateway degrades around (decision 0755)
    admission_max_in_flight: int = Field(default=4, ge=0)
    admission_queue_max: int = Field(default=8, ge=0)
    admission_queue_timeout_ms: int = Field(default=200, ge=0)
    # a local directory or a Hugging Face repo id already in the local cache (never downloaded);
    # "none" (or empty) turns the cross-encoder stage off
    reranker_model: str | None = "BAAI/bge-reranker-base"
    reranker_max_length: int = Field(default=256, ge=16, le=2048)
    reranker_batch_size: int = Field(default=32, ge=1, le=512)
    # base = (1 - w) * ranker + w * cross-encoder when both stages are present
    reranker_cross_encoder_weight: float = Field(default=0.5, ge=0, le=1)
    # the champion when the registry is off (PICKWISE_MLFLOW_TRACKING_URI=none) or has no champion: the newest
    # ranker-v*.txt here; with the registry, pickwise-ranker@champion/@challenger every registry_poll_s
    ranker_model_dir: Path = Field(default_factory=default_ranker_dir)
    # the registered model the aliases belong to (decision 1000); another name only isolates a test's registry use
    ranker_registered_name: str = Field(default=RANKER_MODEL, min_length=1)
    boost_click_weight: float = Field(default=1.0, ge=0)  # 2x: decision 0102
    boost_affinity_weight: float = Field(default=0.2, ge=0)
    boost_popularity_weight: float = Field(default=0.3, ge=0)
    boost_cap: float = Field(default=3.0, ge=1)
    affinity_half_life_h: float = Field(default=24.0, gt=0)
