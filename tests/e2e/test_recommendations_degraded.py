"""Degradation over real processes: an extra gateway (so the shared stack is untouched) whose reranker,
generator or retriever URL points at a dead port still answers 200, degraded, with the reason."""

import httpx
import pytest

from pickwise_common.launcher.processes import free_port

pytestmark = pytest.mark.e2e

QUERY = "samsung phone with 8gb ram under 20000"


@pytest.fixture(scope="module")
def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize(("variable", "reason"), [
    ("PICKWISE_RERANKER_URL", "reranker_unavailable"),
    ("PICKWISE_GENERATOR_URL", "generator_unavailable"),
    ("PICKWISE_RETRIEVER_URL", "retriever_unavailable"),
    ("PICKWISE_SESSION_URL", "session_unavailable"),
])
def test_dead_dependency_degrades_with_its_reason(stack, api_key, dead_url, variable: str, reason: str) -> None:
    proc, url = stack.start_extra("gateway", {variable: dead_url})
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": api_key}, timeout=15) as client:
            response = client.post("/v1/recommendations", json={"query": QUERY, "k": 5, "session_id": "e2e-degraded"})
            body = response.json()
            metrics = client.get("/metrics").text
    finally:
        proc.stop()
    assert response.status_code == 200, body
    assert body["degraded"] is True
    assert reason in body["degradation_reasons"]
    assert body["items"], body
    returned = {i["item_id"] for i in body["items"]}
    assert {p["item_id"] for p in body["answer"]["picks"]} <= returned
    assert f'pickwise_degradations_total{{reason="{reason}",service="gateway"}}' in metrics
    if reason == "generator_unavailable":
        assert body["answer"]["provider"] == "gateway-template"
        assert body["answer"]["picks"]
    if reason == "retriever_unavailable":
        # popularity fallback: no query understanding, explicit order by popularity/rating
        assert "popularity_fallback" in body["timings_ms"]
    if reason == "reranker_unavailable":
        assert "rerank" in body["timings_ms"]
