"""The answer chain: each configured LLM provider in turn (Groq, then OpenAI-compatible), then the offline
grounded template, which is always available. A provider is skipped on timeout, error or invalid output;
``Answer.fallback_reasons`` says why (``<provider>:<reason>``, or ``llm_offline`` when none is configured).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram

from pickwise_common.answer_template import template_answer
from pickwise_common.catalogs import catalog_spec
from pickwise_common.metrics import LATENCY_BUCKETS_S
from pickwise_common.schemas import Answer, GenerateRequest, Item, Usage
from pickwise_common.telemetry import stage
from pickwise_generator.answer import InvalidOutput, parse_answer
from pickwise_generator.prompt import build_messages
from pickwise_generator.providers import ChatProvider, Completion, ProviderError, StreamState

log = logging.getLogger("pickwise.generator")

SERVICE = "generator"
TEMPLATE = "template"
MIN_ATTEMPT_S = 0.05  # less time than this left: not worth starting another provider

LLM_REQUESTS = Counter("pickwise_llm_requests_total", "LLM (and template) answer attempts by outcome",
                       ["provider", "outcome"])
LLM_TOKENS = Counter("pickwise_llm_tokens_total", "Tokens used by LLM calls", ["provider", "kind"])
LLM_LATENCY = Histogram("pickwise_llm_request_duration_seconds", "Duration of one LLM call (whole stream)",
                        ["provider", "outcome"], buckets=LATENCY_BUCKETS_S)
LLM_DROPPED_CITATIONS = Counter("pickwise_llm_dropped_citations_total",
                                "Picks an LLM cited that were not among the given items", ["provider"])


@dataclass
class Attempt:
    """The bookkeeping of one provider call: metrics, span attributes, the validated result."""

    provider: ChatProvider
    started: float = field(default_factory=time.perf_counter)

    def record(self, span: Any, outcome: str, usage: Usage | None) -> None:
        name = self.provider.name
        LLM_REQUESTS.labels(name, outcome).inc()
        LLM_LATENCY.labels(name, outcome).observe(time.perf_counter() - self.started)
        span.set_attribute("llm.outcome", outcome)
        if usage is not None:
            LLM_TOKENS.labels(name, "prompt").inc(usage.prompt_tokens)
            LLM_TOKENS.labels(name, "completion").inc(usage.completion_tokens)
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)


def _span_attributes(provider: ChatProvider) -> dict[str, Any]:
    return {"gen_ai.system": provider.name, "gen_ai.request.model": provider.model,
            "gen_ai.operation.name": "chat"}


def _validated(provider: ChatProvider, completion: Completion, items: Sequence[Item],
               reasons: list[str]) -> Answer:
    summary, picks, dropped = parse_answer(completion.text, items)
    if dropped:
        LLM_DROPPED_CITATIONS.labels(provider.name).inc(dropped)
    return Answer(summary=summary, picks=picks, provider=provider.name, model=provider.model,
                  usage=completion.usage, fallback_reasons=list(reasons))


def _template(request: GenerateRequest, reasons: list[str]) -> Answer:
    with stage(SERVICE, "template", items=len(request.items)):
        summary, picks = template_answer(request.query, request.items, request.parsed,
                                         catalog_spec(request.catalog).currency)
    LLM_REQUESTS.labels(TEMPLATE, "ok").inc()
    return Answer(summary=summary, picks=picks, provider=TEMPLATE, model=None, usage=Usage(),
                  fallback_reasons=list(reasons))


class Generator:
    def __init__(self, providers: Sequence[ChatProvider], total_budget_s: float = 1.3) -> None:
        self.providers = list(providers)
        self.total_budget_s = total_budget_s

    def _start(self, request: GenerateRequest) -> tuple[list[str], bool]:
        if not request.items:
            return ["no_items"], False
        if not self.providers:
            return ["llm_offline"], False
        return [], True

    def _within_budget(self, reasons: list[str]) -> Iterator[tuple[ChatProvider, float]]:
        """Each provider in turn with the seconds left of the total budget; one left too little time is
        skipped (``<provider>:no_time``). Lazy: the time left is read when the previous attempt has ended."""
        deadline = time.monotonic() + self.total_budget_s
        for provider in self.providers:
            left_s = deadline - time.monotonic()
            if left_s < MIN_ATTEMPT_S:
                reasons.append(f"{provider.name}:no_time")
                continue
            yield provider, left_s

    async def generate(self, request: GenerateRequest) -> Answer:
        reasons, use_llm = self._start(request)
        if use_llm:
            messages = build_messages(request.query, request.items, request.parsed, request.history,
                                      request.catalog)
            for provider, left_s in self._within_budget(reasons):
                attempt = Attempt(provider)
                with stage(SERVICE, f"llm_{provider.name}", **_span_attributes(provider)) as span:
                    try:
                        completion = await provider.complete(messages, left_s)
                    except ProviderError as exc:
                        attempt.record(span, exc.reason, None)
                        reasons.append(f"{provider.name}:{exc.reason}")
                        log.warning("LLM provider failed, falling back: %s", exc)
                        continue
                    try:
                        answer = _validated(provider, completion, request.items, reasons)
                    except InvalidOutput as exc:
                        attempt.record(span, "invalid_output", completion.usage)
                        reasons.append(f"{provider.name}:invalid_output")
                        log.warning("LLM %s answered off-format (%s), falling back", provider.name, exc)
                        continue
                    attempt.record(span, "ok", completion.usage)
                    return answer
        return _template(request, reasons)

    async def stream(self, request: GenerateRequest) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(event, data)`` pairs: ``provider`` (an attempt starts), ``delta`` (summary text as it
        arrives), ``fallback`` (the attempt failed: discard its deltas), then one ``answer`` (the validated
        Answer, authoritative) and ``done``."""
        reasons, use_llm = self._start(request)
        if use_llm:
            messages = build_messages(request.query, request.items, request.parsed, request.history,
                                      request.catalog)
            for provider, left_s in self._within_budget(reasons):
                yield "provider", {"provider": provider.name, "model": provider.model}
                attempt = Attempt(provider)
                state = StreamState()
                extractor = SummaryExtractor()
                failure: str | None = None
                with stage(SERVICE, f"llm_{provider.name}", stream=True, **_span_attributes(provider)) as span:
                    try:
                        async for piece in provider.stream(messages, state, left_s):
                            text = extractor.feed(piece)
                            if text:
                                yield "delta", {"text": text}
                    except ProviderError as exc:
                        failure = exc.reason
                        attempt.record(span, exc.reason, None)
                    if failure is None:
                        try:
                            answer = _validated(provider, Completion(state.text, state.usage), request.items,
                                                reasons)
                        except InvalidOutput:
                            failure = "invalid_output"
                            attempt.record(span, failure, state.usage)
                        else:
                            attempt.record(span, "ok", state.usage)
                if failure is None:
                    yield "answer", answer.model_dump(mode="json")
                    yield "done", {}
                    return
                reasons.append(f"{provider.name}:{failure}")
                yield "fallback", {"provider": provider.name, "reason": failure}
        answer = _template(request, reasons)
        yield "provider", {"provider": TEMPLATE, "model": None}
        yield "delta", {"text": answer.summary}
        yield "answer", answer.model_dump(mode="json")
        yield "done", {}


class SummaryExtractor:
    """Pulls the decoded value of ``"summary"`` out of a JSON object while it streams in, so a client
    can show the summary before the whole answer has arrived."""

    def __init__(self) -> None:
        self.buffer = ""
        self.emitted = 0
        self.closed = False

    def feed(self, piece: str) -> str:
        self.buffer += piece
        if self.closed:
            return ""
        decoded, self.closed = self._decode()
        if decoded and "\ud800" <= decoded[-1] <= "\udbff":  # half of a surrogate pair: wait for the rest
            decoded = decoded[:-1]
        new = decoded[self.emitted:]
        self.emitted = len(decoded)
        return new

    def _decode(self) -> tuple[str, bool]:
        key = self.buffer.find('"summary"')
        if key < 0:
            return "", False
        rest = self.buffer[key + len('"summary"'):]
        stripped = rest.lstrip()
        if not stripped.startswith(":"):
            return "", False
        value = stripped[1:].lstrip()
        if not value.startswith('"'):
            return "", False
        raw, i, closed = [], 1, False
        while i < len(value):
            ch = value[i]
            if ch == "\\":
                if i + 1 >= len(value):
                    break
                width = 6 if value[i + 1] == "u" else 2
                if i + width > len(value):
                    break
                raw.append(value[i:i + width])
                i += width
                continue
            if ch == '"':
                closed = True
                break
            raw.append(ch)
            i += 1
        try:
            return json.loads('"' + "".join(raw) + '"'), closed
        except json.JSONDecodeError:
            return "", False
