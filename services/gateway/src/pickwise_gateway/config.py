"""Settings of the gateway service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from pickwise_common.api_keys import plain_keys_outside_local
from pickwise_common.settings import DownstreamSettings, KafkaSettings, RedisSettings, ServiceSettings

Fusion = Literal["weighted", "rrf"]
RankerAlias = Literal["champion", "challenger"]


class VariantSpec(BaseModel):
    """One arm of an experiment: how retrieval fuses and which registered ranker scores (decision 1005)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    share: float = Field(ge=0, le=1)
    fusion: Fusion = "weighted"
    alpha: float = Field(default=0.3, ge=0, le=1)
    ranker_alias: RankerAlias = "champion"


class ExperimentSpec(BaseModel):
    """``PICKWISE_EXPERIMENT`` (JSON): the variants shoppers are split into, shares summing to 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    variants: list[VariantSpec] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> ExperimentSpec:
        total = sum(v.share for v in self.variants)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"variant shares sum to {total:g}, not 1")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if {"challenger", "interleaved"} & set(names):
            raise ValueError("'challenger' and 'interleaved' are reserved variant names")
        return self


class GatewaySettings(ServiceSettings, KafkaSettings, DownstreamSettings, RedisSettings):
    service_name: str = "gateway"
    port: int = 8000
    # Rate limits (moving windows shared through Redis, in-process while Redis is down; decision 0753).
    # Per API key id: a storefront backend usually sends every shopper's request with one key.
    rate_limit_per_minute: int = Field(default=6000, ge=1)
    rate_limit_burst: int | None = Field(default=None, ge=1, description="most requests of one key in a second")
    # per shopper: the request's user_id when it names one, else the client IP. As high as the key's own
    # limit by default: a storefront backend that sends no user ids is one IP for all its shoppers
    rate_limit_per_client_per_minute: int = Field(default=6000, ge=1)
    # requests without a valid key, per client IP (401s are limited too)
    rate_limit_unauthenticated_per_minute: int = Field(default=60, ge=1)
    rate_limit_redis: bool = True
    rate_limit_redis_retry_s: float = Field(default=5.0, ge=0, description="in-process limits this long after "
                                                                           "a Redis error")
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are believed ("*" = any); empty: none
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # admission control of /v1/ except the events endpoints (decision 0755)
    admission_max_in_flight: int = Field(default=8, ge=0)
    admission_queue_max: int = Field(default=16, ge=0)
    admission_queue_timeout_ms: int = Field(default=200, ge=0)
    ab_split: float = Field(default=0.5, ge=0, le=1, description="share of users in variant B")
    # what the variants change (DESIGN §3 fusion): A = weighted min-max fusion, B = reciprocal rank fusion
    ab_a_fusion: Fusion = "weighted"
    ab_a_alpha: float = Field(default=0.3, ge=0, le=1)
    ab_b_fusion: Fusion = "rrf"
    ab_b_alpha: float = Field(default=0.3, ge=0, le=1)
    # the experiment (decision 1005); unset: "ab" built from the ab_* settings above
    experiment: ExperimentSpec | None = None
    # share of shoppers (own hash, independent of the experiment's buckets) scored by the challenger ranker
    challenger_share: float = Field(default=0.1, ge=0, le=1)
    # team-draft interleaving of champion and challenger on the same request (decision 1005)
    interleaving: bool = False
    interleaving_share: float = Field(default=1.0, ge=0, le=1, description="share of shoppers interleaved "
                                                                           "when interleaving is on")
    # RandPair exploration (decision 1004): share of search/recommendation responses with one adjacent pair
    # randomised; 0 turns it off
    exploration_share: float = Field(default=0.05, ge=0, le=1)
    # impressions (decision 1001): the bounded queue between the request path and the broker
    impression_queue_max: int = Field(default=10_000, ge=1)
    # off only to measure what impression logging costs a request (make bench IMPRESSIONS=off)
    impressions_enabled: bool = True
    impression_send_attempts: int = Field(default=3, ge=1, le=10)
    # the drain task waits this long after a batch's first impression before sending (fewer, larger produce
    # requests: decision 1001c); impressions are read by the consumer in half-second polls anyway
    impression_linger_ms: int = Field(default=100, ge=0, le=2000)
    impression_drain_s: float = Field(default=3.0, ge=0, description="how long shutdown waits for the queue")
    # over-shown filter: items shown to the user this many times without engagement leave search and feed;
    # 0 turns it off
    overshown_after: int = Field(default=8, ge=0)
    overshown_budget_ms: int = Field(default=30, ge=1, description="the Redis read of the filter; skipped "
                                                                   "past it")
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
    # the web page embeds the first plain API key only when PICKWISE_ENVIRONMENT=local (and this is not off)
    web_embed_key: bool = True

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @model_validator(mode="after")
    def _no_plain_keys_outside_local(self) -> GatewaySettings:
        plain = plain_keys_outside_local(self.api_keys, self.environment)
        if plain:
            raise ValueError(f"PICKWISE_API_KEYS holds plain keys ({', '.join(plain)}) while PICKWISE_ENVIRONMENT="
                             f"{self.environment!r}: give sha256 records (`pickwise keys hash <key>`)")
        return self

    def embed_key(self) -> bool:
        return self.environment == "local" and self.web_embed_key
