"""Settings of the gateway service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pickwise_common.settings import DownstreamSettings, KafkaSettings, RedisSettings, ServiceSettings

Fusion = Literal["weighted", "rrf"]


class GatewaySettings(ServiceSettings, KafkaSettings, DownstreamSettings, RedisSettings):
    service_name: str = "gateway"
    port: int = 8000
    # per API key; a storefront backend usually sends every shopper's request with one key
    rate_limit_per_minute: int = Field(default=6000, ge=1)
    rate_limit_burst: int | None = Field(default=None, ge=1, description="bucket size; default = per-minute rate")
    ab_split: float = Field(default=0.5, ge=0, le=1, description="share of users in variant B")
    # what the variants change (DESIGN §3 fusion): A = weighted min-max fusion, B = reciprocal rank fusion
    ab_a_fusion: Fusion = "weighted"
    ab_a_alpha: float = Field(default=0.3, ge=0, le=1)
    ab_b_fusion: Fusion = "rrf"
    ab_b_alpha: float = Field(default=0.3, ge=0, le=1)
    total_budget_ms: int = Field(default=2000, ge=100)
    session_budget_ms: int = Field(default=50, ge=1)
    retriever_budget_ms: int = Field(default=800, ge=1)
    reranker_budget_ms: int = Field(default=500, ge=1)
    generator_budget_ms: int = Field(default=1500, ge=1)
    popularity_budget_ms: int = Field(default=300, ge=1)
    # retrieval does not depend on the shopper (personalisation happens in the reranker), so identical
    # retrieve requests within the TTL are answered from an in-process cache; 0 turns it off
    retrieval_cache_ttl_s: float = Field(default=30.0, ge=0)
    retrieval_cache_size: int = Field(default=2048, ge=0)
    popularity_cache_ttl_s: float = Field(default=5.0, ge=0)
    retrieve_candidates: int = Field(default=50, ge=1, le=500, description="candidates asked of the retriever")
    # None: embed the first API key in the web page only when PICKWISE_ENVIRONMENT=local
    web_embed_key: bool | None = None

    def embed_key(self) -> bool:
        return self.environment == "local" if self.web_embed_key is None else self.web_embed_key
