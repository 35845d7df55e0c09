"""Settings of the generator service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from pydantic import SecretStr

from pickwise_common.settings import ServiceSettings


class GeneratorSettings(ServiceSettings):
    service_name: str = "generator"
    port: int = 8003
    groq_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    llm_timeout_ms: int = 1500
