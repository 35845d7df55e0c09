"""One trace per request across every hop, exported over OTLP/HTTP: a recommendation from the gateway
through session, retriever, reranker and generator (with their stage spans, the LLM call included), and a
click from the gateway through Kafka (``traceparent`` header) into the event-consumer's processing of it.

A collector stand-in (an HTTP server on 127.0.0.1 decoding OTLP protobuf with opentelemetry-proto)
receives the spans of a dedicated set of services started with ``stack.start_extra`` and
``PICKWISE_OTEL_EXPORTER=otlp``, so the shared stack is untouched. The extra event-consumer joins its own
consumer group, so it sees every event whatever the shared consumer does; the extra generator talks to an
OpenAI-compatible stand-in on 127.0.0.1, so the trace holds a real LLM-call span."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

pytestmark = pytest.mark.e2e

SPAN_DEADLINE_S = 60.0  # BatchSpanProcessor flushes every 500 ms; a consumer may take a while to join its group


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict = field(default_factory=dict, hash=False, compare=False)


class OtlpCollector:
    """Accepts ``POST /v1/traces`` (OTLP/HTTP protobuf, optionally gzip) and keeps every span."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self.requests = 0
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector._add(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _add(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(ExportedSpan(
                        service=resource.get("service.name", ""), trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(), parent_span_id=span.parent_span_id.hex(), name=span.name,
                        kind=span.kind, attributes={a.key: _value(a.value) for a in span.attributes}))
        with self._lock:
            self.requests += 1
            self.spans.extend(spans)

    def trace(self, trace_id: str) -> list[ExportedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def start(self) -> OtlpCollector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ChatCompletionsStandIn:
    """An OpenAI-compatible ``POST /v1/chat/completions`` that answers a grounded JSON citing the first two
    items it was given."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                payload = json.loads(body["messages"][-1]["content"])
                picks = [{"item_id": item["item_id"], "why": "matches the query"} for item in payload["items"][:2]]
                content = json.dumps({"summary": "Two phones that fit what you asked for.", "picks": picks})
                reply = json.dumps({
                    "id": "chatcmpl-trace", "object": "chat.completion", "created": int(time.time()),
                    "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                                                         "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 200, "completion_tokens": 30, "total_tokens": 230}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(value) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Tree:
    """The spans of one trace, with parent links resolved across services."""

    def __init__(self, spans: list[ExportedSpan]) -> None:
        self.spans = spans
        self.by_id = {s.span_id: s for s in spans}

    def roots(self) -> list[ExportedSpan]:
        return [s for s in self.spans if not s.parent_span_id]

    def ancestors(self, span: ExportedSpan) -> list[ExportedSpan]:
        chain = []
        while span.parent_span_id:
            parent = self.by_id.get(span.parent_span_id)
            if parent is None:
                raise AssertionError(f"span {span.name!r} of {span.service} has a parent that was not exported")
            chain.append(parent)
            span = parent
        return chain

    def find(self, service: str, name: str) -> list[ExportedSpan]:
        return [s for s in self.spans if s.service == f"pickwise-{service}" and s.name == name]

    def one(self, service: str, name: str) -> ExportedSpan:
        found = self.find(service, name)
        assert found, f"no span {name!r} from {service}; have {sorted({(s.service, s.name) for s in self.spans})}"
        return found[0]

    def descends(self, span: ExportedSpan, ancestor: ExportedSpan) -> bool:
        return ancestor in self.ancestors(span)


def wait_for_trace(collector: OtlpCollector, trace_id: str, complete: Callable[[Tree], bool]) -> Tree:
    """Poll until the exported spans of ``trace_id`` satisfy ``complete`` (exports are batched)."""
    deadline = time.monotonic() + SPAN_DEADLINE_S
    tree = Tree([])
    while time.monotonic() < deadline:
        tree = Tree(collector.trace(trace_id))
        if complete(tree):
            return tree
        time.sleep(0.25)
    return tree


def _has(tree: Tree, service: str, name: str) -> bool:
    return bool(tree.find(service, name))


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpCollector]:
    started = OtlpCollector().start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def llm() -> Iterator[ChatCompletionsStandIn]:
    started = ChatCompletionsStandIn()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def traced_gateway(stack, collector, llm) -> Iterator[str]:
    """Six extra service processes exporting to the collector; the extra gateway calls the extra services."""
    otlp = {"PICKWISE_OTEL_EXPORTER": "otlp", "PICKWISE_OTLP_ENDPOINT": collector.url}
    provider = {"PICKWISE_OPENAI_BASE_URL": llm.url, "PICKWISE_OPENAI_API_KEY": "test-key"}
    started = []
    try:
        urls = {}
        for name in ("retriever", "reranker", "generator", "session"):
            proc, url = stack.start_extra(name, otlp | (provider if name == "generator" else {}))
            started.append(proc)
            urls[f"PICKWISE_{name.upper()}_URL"] = url
        group = {"PICKWISE_CONSUMER_GROUP": f"tracing-{uuid.uuid4().hex[:8]}"}
        proc, _ = stack.start_extra("event-consumer", otlp | group)
        started.append(proc)
        proc, gateway_url = stack.start_extra("gateway", otlp | urls)
        started.append(proc)
        yield gateway_url
    finally:
        for proc in reversed(started):
            proc.stop()


def test_collector_stand_in_decodes_otlp_protobuf(collector) -> None:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "pickwise-probe"
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name, span.kind = b"\x01" * 16, b"\x02" * 8, "probe", ProtoSpan.SPAN_KIND_SERVER
    response = httpx.post(collector.url + "/v1/traces", content=request.SerializeToString(),
                          headers={"Content-Type": "application/x-protobuf"})
    assert response.status_code == 200
    assert collector.trace("01" * 16)[0].service == "pickwise-probe"


def test_a_recommendation_is_one_trace_through_every_hop_with_stage_spans(traced_gateway, collector, api_key) -> None:
    session_id = f"trace-s-{uuid.uuid4().hex[:8]}"
    response = httpx.post(traced_gateway + "/v1/recommendations", headers={"X-API-Key": api_key}, timeout=30,
                          json={"query": "samsung phone with 8gb ram under 20000", "k": 5,
                                "user_id": "trace-user", "session_id": session_id})
    body = response.json()
    assert response.status_code == 200, body
    assert body["items"], body
    trace_id = body["trace_id"]
    assert response.headers["x-trace-id"] == trace_id

    wanted = [("gateway", "POST /v1/recommendations"), ("session", "GET /v1/sessions/{session_id}"),
              ("retriever", "POST /v1/retrieve"), ("reranker", "POST /v1/rerank"),
              ("generator", "POST /v1/generate"), ("retriever", "parse"), ("retriever", "bm25"),
              ("retriever", "dense"), ("retriever", "fuse"),
              ("reranker", "behaviour_boost"), ("generator", "llm_openai"),
              ("event-consumer", "consume events.sessions")]
    tree = wait_for_trace(collector, trace_id, lambda t: all(_has(t, s, n) for s, n in wanted))

    root = tree.one("gateway", "POST /v1/recommendations")
    assert tree.roots() == [root]  # one trace, one root: every other span hangs below the gateway's
    for service, name in wanted:
        span = tree.one(service, name)
        if span is not root:
            assert tree.descends(span, root), f"{service} {name} is not below the gateway's span"
    for hop, server_span in [("session", "GET /v1/sessions/{session_id}"), ("retrieve", "POST /v1/retrieve"),
                             ("rerank", "POST /v1/rerank"), ("generate", "POST /v1/generate")]:
        gateway_stage = tree.one("gateway", hop)
        service = {"retrieve": "retriever", "rerank": "reranker", "generate": "generator"}.get(hop, hop)
        assert tree.descends(tree.one(service, server_span), gateway_stage)
        assert tree.one(service, server_span).kind == ProtoSpan.SPAN_KIND_SERVER
    retrieve = tree.one("retriever", "POST /v1/retrieve")
    for stage in ("parse", "bm25", "dense", "fuse"):
        assert tree.descends(tree.one("retriever", stage), retrieve)
    rerank = tree.one("reranker", "POST /v1/rerank")
    # no "ranker" stage: the shipped ranker scores below retrieval order and is held back (decision 1003b)
    assert not tree.find("reranker", "ranker")
    assert tree.descends(tree.one("reranker", "behaviour_boost"), rerank)
    llm_call = tree.one("generator", "llm_openai")
    assert tree.descends(llm_call, tree.one("generator", "POST /v1/generate"))
    assert llm_call.attributes["gen_ai.usage.input_tokens"] == 200
    assert body["answer"]["picks"], body["answer"]


def test_a_click_continues_its_trace_into_the_event_consumer(traced_gateway, collector, api_key) -> None:
    response = httpx.post(traced_gateway + "/v1/events/click", headers={"X-API-Key": api_key}, timeout=30,
                          json={"user_id": f"trace-click-{uuid.uuid4().hex[:8]}", "item_id": "fm-00001",
                                "source": "search", "position": 1})
    assert response.status_code == 202, response.text
    trace_id = response.headers["x-trace-id"]

    # each process exports its spans in its own batches: wait for both sides, not just the consumer's
    tree = wait_for_trace(collector, trace_id, lambda t: _has(t, "event-consumer", "consume events.interactions")
                          and _has(t, "event-consumer", "redis.apply_features")
                          and _has(t, "gateway", "POST /v1/events/click") and _has(t, "gateway", "produce_event"))

    root = tree.one("gateway", "POST /v1/events/click")
    assert tree.roots() == [root]
    consume = tree.one("event-consumer", "consume events.interactions")
    assert consume.attributes["messaging.destination.name"] == "events.interactions"
    assert tree.descends(consume, tree.one("gateway", "produce_event"))
    for store_span in ("postgres.insert events", "redis.apply_features"):
        assert tree.descends(tree.one("event-consumer", store_span), consume)
