"""Settings of the generator service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from pickwise_common.settings import ServiceSettings


class GeneratorSettings(ServiceSettings):
    service_name: str = "generator"
    port: int = 8003
    groq_api_key: SecretStr | None = None
    groq_model: str = "llama-3.3-70b-versatile"
    # unset: the groq client's default (https://api.groq.com); tests point it at a local server
    groq_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    # any OpenAI-compatible server (vLLM, Ollama, ...); with a base URL and no key the provider is still on
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    llm_timeout_ms: int = Field(default=1500, ge=50, le=60_000)
    # all LLM attempts of one request together; below the gateway's generator budget (1500 ms) so the
    # template still answers in time when every provider is slow
    llm_total_budget_ms: int = Field(default=1300, ge=50, le=120_000)
    llm_max_tokens: int = Field(default=400, ge=16, le=4096)
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    llm_json_mode: bool = True
