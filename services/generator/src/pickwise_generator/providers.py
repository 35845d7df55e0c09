"""LLM providers speaking the chat-completions API: Groq (``groq`` client) and OpenAI or any
OpenAI-compatible server (``openai`` client). Each call has its own timeout and no client-side retries
(the fallback chain is the retry)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pickwise_common.schemas import Usage
from pickwise_generator.config import GeneratorSettings


class ProviderError(RuntimeError):
    """A provider call failed (connection, HTTP status, timeout, empty answer)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Completion:
    text: str
    usage: Usage = field(default_factory=Usage)


@dataclass
class StreamState:
    """Filled while a stream is consumed: the full text and the usage the server reported."""

    text: str = ""
    usage: Usage = field(default_factory=Usage)


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    return Usage(prompt_tokens=int(getattr(raw, "prompt_tokens", 0) or 0),
                 completion_tokens=int(getattr(raw, "completion_tokens", 0) or 0))


@dataclass
class ChatProvider:
    name: str
    model: str
    client: Any
    timeout_s: float
    max_tokens: int
    temperature: float
    json_mode: bool
    errors: tuple[type[BaseException], ...]

    def _params(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                                  "temperature": self.temperature}
        if self.json_mode:
            params["response_format"] = {"type": "json_object"}
        return params

    async def complete(self, messages: list[dict[str, str]], timeout_s: float | None = None) -> Completion:
        timeout_s = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                response = await self.client.chat.completions.create(**self._params(messages))
        except TimeoutError as exc:
            raise ProviderError("timeout", f"{self.name}: no answer within {timeout_s:.2f} s") from exc
        except self.errors as exc:
            raise ProviderError(_reason(exc), f"{self.name}: {type(exc).__name__}: {exc}"[:300]) from exc
        if not response.choices or not response.choices[0].message.content:
            raise ProviderError("empty", f"{self.name}: empty answer")
        return Completion(text=response.choices[0].message.content, usage=_usage(response.usage))

    async def stream(self, messages: list[dict[str, str]], state: StreamState,
                     timeout_s: float | None = None) -> AsyncIterator[str]:
        """Yield text chunks; ``state`` holds the whole text and usage when the stream ends. The timeout
        covers the whole stream."""
        timeout_s = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        params = self._params(messages) | {"stream": True}
        if self.name == "openai":
            params["stream_options"] = {"include_usage": True}
        try:
            async with asyncio.timeout(timeout_s):
                response = await self.client.chat.completions.create(**params)
                async for chunk in response:
                    usage = getattr(chunk, "usage", None) or getattr(getattr(chunk, "x_groq", None), "usage", None)
                    if usage is not None:
                        state.usage = _usage(usage)
                    if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                        piece = chunk.choices[0].delta.content
                        state.text += piece
                        yield piece
        except TimeoutError as exc:
            raise ProviderError("timeout", f"{self.name}: stream exceeded {timeout_s:.2f} s") from exc
        except self.errors as exc:
            raise ProviderError(_reason(exc), f"{self.name}: {type(exc).__name__}: {exc}"[:300]) from exc
        if not state.text:
            raise ProviderError("empty", f"{self.name}: empty answer")

    async def aclose(self) -> None:
        await self.client.close()


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if "Timeout" in name:
        return "timeout"
    if "Connection" in name:
        return "unreachable"
    status = getattr(exc, "status_code", None)
    return f"http_{status}" if status else "error"


def build_providers(settings: GeneratorSettings) -> list[ChatProvider]:
    """Groq first, then OpenAI(-compatible); a provider without a key (or base URL) is not in the chain."""
    providers: list[ChatProvider] = []
    timeout_s = settings.llm_timeout_ms / 1000
    common = {"timeout_s": timeout_s, "max_tokens": settings.llm_max_tokens,
              "temperature": settings.llm_temperature, "json_mode": settings.llm_json_mode}
    if settings.groq_api_key is not None and settings.groq_api_key.get_secret_value():
        import groq

        client = groq.AsyncGroq(api_key=settings.groq_api_key.get_secret_value(), base_url=settings.groq_base_url,
                                timeout=timeout_s, max_retries=0)
        providers.append(ChatProvider(name="groq", model=settings.groq_model, client=client,
                                      errors=(groq.GroqError,), **common))
    openai_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if openai_key or settings.openai_base_url:
        import openai

        client = openai.AsyncOpenAI(api_key=openai_key or "not-needed", base_url=settings.openai_base_url,
                                    timeout=timeout_s, max_retries=0)
        providers.append(ChatProvider(name="openai", model=settings.openai_model, client=client,
                                      errors=(openai.OpenAIError,), **common))
    return providers
