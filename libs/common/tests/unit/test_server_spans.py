"""A request to a service makes one server span, with no child span per ASGI receive/send message."""

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pickwise_common.app import service_app
from pickwise_common.settings import ServiceSettings

pytestmark = pytest.mark.unit


async def test_one_server_span_per_request_and_no_send_receive_spans() -> None:
    app = service_app("unit", ServiceSettings(service_name="unit"))

    @app.post("/v1/echo")
    async def echo(body: dict) -> dict:
        return body

    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://unit") as client:
        response = await client.post("/v1/echo", json={"q": "phone"})
    assert response.json() == {"q": "phone"}
    names = [span.name for span in exporter.get_finished_spans()]
    assert names.count("POST /v1/echo") == 1
    assert not [n for n in names if n.endswith(("http send", "http receive"))]
