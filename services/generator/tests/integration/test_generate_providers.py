"""The generator service against a real local server speaking Groq's and OpenAI's chat-completions API:
the provider chain, fallbacks with reasons, validation of the model's JSON, streaming, usage, metrics
and spans."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pickwise_common import telemetry
from pickwise_generator.app import create_app
from pickwise_generator.config import GeneratorSettings

pytestmark = pytest.mark.integration


def settings_for(fake_llm, groq: str | None = None, openai: str | None = None,
                 timeout_ms: int = 800) -> GeneratorSettings:
    return GeneratorSettings(
        groq_api_key="test-groq-key" if groq else None, groq_base_url=fake_llm.groq_url(groq) if groq else None,
        groq_model="llama-test", openai_api_key="test-openai-key" if openai else None,
        openai_base_url=fake_llm.openai_url(openai) if openai else None, openai_model="gpt-test",
        llm_timeout_ms=timeout_ms, log_json=False)


def body(make_item, n: int = 3) -> dict[str, Any]:
    items = [make_item(f"fm-0000{i}", price=10_000 + 1_000 * i) for i in range(1, n + 1)]
    return {"query": "samsung under 15k", "items": [i.model_dump(mode="json") for i in items],
            "parsed": {"brands": ["Samsung"], "price_max_inr": 15000}}


def post(settings: GeneratorSettings, payload: dict[str, Any], path: str = "/v1/generate"):
    with TestClient(create_app(settings)) as client:
        return client.post(path, json=payload)


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_groq_answers_first_with_usage_and_only_given_ids(fake_llm, make_item):
    response = post(settings_for(fake_llm, groq="good", openai="good"), body(make_item))
    assert response.status_code == 200
    answer = response.json()
    assert answer["provider"] == "groq" and answer["model"] == "llama-test"
    assert [p["item_id"] for p in answer["picks"]] == ["fm-00001", "fm-00002"]
    assert answer["usage"] == {"prompt_tokens": 321, "completion_tokens": 45}
    assert answer["fallback_reasons"] == []
    sent = fake_llm.requests[-1]
    assert sent["path"].endswith("/good/openai/v1/chat/completions")
    assert sent["authorization"] == "Bearer test-groq-key"
    assert sent["body"]["response_format"] == {"type": "json_object"}
    assert "product" in sent["body"]["messages"][0]["content"] and sent["body"]["messages"][0]["role"] == "system"


def test_slow_groq_falls_back_to_openai(fake_llm, make_item, no_blocking_io):
    answer = post(settings_for(fake_llm, groq="slow", openai="good", timeout_ms=300), body(make_item)).json()
    assert answer["provider"] == "openai" and answer["model"] == "gpt-test"
    assert answer["fallback_reasons"] == ["groq:timeout"]
    assert fake_llm.requests[-1]["path"].endswith("/good/v1/chat/completions")


def test_total_budget_bounds_the_whole_chain(fake_llm, make_item):
    settings = settings_for(fake_llm, groq="slow", openai="slow", timeout_ms=2000)
    settings.llm_total_budget_ms = 400
    answer = post(settings, body(make_item)).json()
    assert answer["provider"] == "template"
    assert answer["fallback_reasons"][0] == "groq:timeout"
    assert answer["fallback_reasons"][1] in ("openai:no_time", "openai:timeout")


def test_failing_groq_and_invalid_openai_fall_back_to_the_template(fake_llm, make_item):
    answer = post(settings_for(fake_llm, groq="fail", openai="invalid"), body(make_item)).json()
    assert answer["provider"] == "template"
    assert answer["fallback_reasons"] == ["groq:http_500", "openai:invalid_output"]
    assert {p["item_id"] for p in answer["picks"]} <= {"fm-00001", "fm-00002", "fm-00003"}
    assert answer["picks"]


def test_unreachable_provider_is_a_fallback_reason(make_item):
    settings = GeneratorSettings(openai_base_url="http://127.0.0.1:9/v1", openai_api_key="k", llm_timeout_ms=500)
    answer = post(settings, body(make_item)).json()
    assert answer["provider"] == "template" and answer["fallback_reasons"] == ["openai:unreachable"]


def test_no_key_configured_answers_with_the_template_as_llm_offline(make_item):
    response = post(GeneratorSettings(groq_api_key=None, openai_api_key=None, openai_base_url=None),
                    body(make_item))
    answer = response.json()
    assert answer["provider"] == "template" and answer["fallback_reasons"] == ["llm_offline"]
    assert "under ₹15,000" in answer["summary"]


def test_stream_sends_summary_deltas_then_the_validated_answer(fake_llm, make_item):
    response = post(settings_for(fake_llm, groq="good"), body(make_item), "/v1/generate/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [e for e, _ in events]
    assert names[0] == "provider" and names[-2:] == ["answer", "done"] and "delta" in names
    answer = events[-2][1]
    streamed = "".join(d["text"] for e, d in events if e == "delta")
    assert streamed == answer["summary"]
    assert answer["provider"] == "groq" and answer["usage"]["completion_tokens"] == 45
    assert "not-in-the-list" not in {p["item_id"] for p in answer["picks"]}


def test_stream_falls_back_after_invalid_output(fake_llm, make_item, no_blocking_io):
    response = post(settings_for(fake_llm, groq="invalid", openai="good"), body(make_item), "/v1/generate/stream")
    events = sse_events(response.text)
    assert ("fallback", {"provider": "groq", "reason": "invalid_output"}) in events
    answer = events[-2][1]
    assert answer["provider"] == "openai" and answer["fallback_reasons"] == ["groq:invalid_output"]


def test_stream_without_llm_streams_the_template(make_item):
    response = post(GeneratorSettings(groq_api_key=None, openai_api_key=None, openai_base_url=None),
                    body(make_item), "/v1/generate/stream")
    events = sse_events(response.text)
    assert [e for e, _ in events] == ["provider", "delta", "answer", "done"]
    assert events[2][1]["provider"] == "template"


def test_llm_metrics_count_outcomes_and_tokens(fake_llm, make_item):
    settings = settings_for(fake_llm, groq="slow", openai="good", timeout_ms=300)
    with TestClient(create_app(settings)) as client:
        client.post("/v1/generate", json=body(make_item))
        metrics = client.get("/metrics").text
    assert 'pickwise_llm_requests_total{outcome="timeout",provider="groq"}' in metrics
    assert 'pickwise_llm_requests_total{outcome="ok",provider="openai"}' in metrics
    assert 'pickwise_llm_tokens_total{kind="prompt",provider="openai"}' in metrics
    assert "pickwise_llm_request_duration_seconds_bucket" in metrics
    assert 'pickwise_llm_dropped_citations_total{provider="openai"}' in metrics


def test_each_llm_call_has_a_span_with_provider_model_and_tokens(fake_llm, make_item):
    settings = settings_for(fake_llm, groq="fail", openai="good")
    app = create_app(settings)
    exporter = InMemorySpanExporter()
    telemetry.setup_tracing(settings).add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(app) as client:
        client.post("/v1/generate", json=body(make_item))
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name.startswith("llm_")}
    assert spans["llm_groq"].attributes["llm.outcome"] == "http_500"
    assert spans["llm_openai"].attributes["gen_ai.request.model"] == "gpt-test"
    assert spans["llm_openai"].attributes["gen_ai.usage.input_tokens"] == 321
    assert spans["llm_openai"].attributes["gen_ai.usage.output_tokens"] == 45


def test_readyz_names_the_provider_chain(fake_llm):
    with TestClient(create_app(settings_for(fake_llm, groq="good", openai="good"))) as client:
        check = client.get("/readyz").json()["checks"]["llm"]
    assert check["providers"] == ["groq", "openai", "template"]


@pytest.mark.parametrize(("payload", "field"), [
    ({"query": "x"}, "body.items"),
    ({"query": "", "items": []}, "body.query"),
    ({"query": "x", "items": [], "tone": "funny"}, "body.tone"),
])
def test_bad_request_is_422_naming_the_field(payload, field):
    response = post(GeneratorSettings(), payload)
    assert response.status_code == 422
    assert field in [f["field"] for f in response.json()["error"]["fields"]]


@pytest.mark.parametrize("path", ["/v1/generate", "/v1/generate/stream"])
def test_unknown_catalog_is_404_before_any_answer_or_stream(path, make_item):
    with TestClient(create_app(GeneratorSettings())) as client:
        response = client.post(path, json={"query": "x", "catalog": "books",
                                           "items": [make_item("a").model_dump(mode="json")]})
    assert response.status_code == 404
    assert response.json()["error"]["fields"][0]["field"] == "catalog"
