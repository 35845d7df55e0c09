"""Settings of the gateway service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from pydantic import Field

from pickwise_common.settings import DownstreamSettings, KafkaSettings, ServiceSettings


class GatewaySettings(ServiceSettings, KafkaSettings, DownstreamSettings):
    service_name: str = "gateway"
    port: int = 8000
    rate_limit_per_minute: int = 600
    ab_split: float = Field(default=0.5, ge=0, le=1, description="share of users in variant B")
    total_budget_ms: int = 2000
