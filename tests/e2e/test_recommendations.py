"""POST /v1/recommendations and GET /v1/search over the real stack: items, parsed constraints, a grounded
answer, timings and trace id; the catalog reads proxied to the retriever; a session turn on Kafka."""

import asyncio
import json
import re
import uuid

import httpx
import pytest

from pickwise_common.kafka import TOPIC_SESSIONS, create_consumer
from pickwise_common.settings import KafkaSettings

pytestmark = pytest.mark.e2e

QUERY = "samsung phone with 8gb ram under 20000"


@pytest.fixture(scope="module")
def gateway(stack, api_key):
    with httpx.Client(base_url=stack.url("gateway"), headers={"X-API-Key": api_key}, timeout=15) as client:
        yield client


def test_query_returns_items_parsed_constraints_grounded_answer_and_timings(gateway) -> None:
    response = gateway.post("/v1/recommendations", json={"query": QUERY, "k": 5, "user_id": "e2e-user-1"})
    body = response.json()
    assert response.status_code == 200, body
    assert 1 <= len(body["items"]) <= 5
    assert [i["rank"] for i in body["items"]] == list(range(1, len(body["items"]) + 1))
    assert body["parsed"]["price_max_inr"] == 20000
    assert "samsung" in [b.lower() for b in body["parsed"]["brands"]]
    returned = {i["item_id"] for i in body["items"]}
    assert body["answer"]["summary"]
    assert body["answer"]["picks"], body["answer"]
    assert {p["item_id"] for p in body["answer"]["picks"]} <= returned
    assert {"retrieve", "rerank", "generate", "total"} <= set(body["timings_ms"])
    assert re.fullmatch(r"[0-9a-f]{32}", body["trace_id"])
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["variant"] in {"A", "B"}
    # no LLM key in the test environment: the generator answers with its template, and says so
    assert set(body["degradation_reasons"]) <= {"llm_offline"}
    assert body["degraded"] == bool(body["degradation_reasons"])


def test_items_satisfy_the_parsed_price_and_brand_strict_matches_first(gateway) -> None:
    """Brand is never relaxed; when fewer models than k meet price and RAM, the ones that do come first and
    ``parsed.relaxed`` names what was widened for the rest (decision 0732)."""
    body = gateway.post("/v1/recommendations", json={"query": QUERY, "k": 5, "generate": False}).json()
    assert len(body["items"]) == 5
    assert all(i["brand"].lower() == "samsung" for i in body["items"])
    strict = [i["price_inr"] <= 20000 and (i["ram_gb"] or 0) >= 8 for i in body["items"]]
    assert strict[0], body["items"][0]
    assert strict == sorted(strict, reverse=True), strict  # every strict match before every relaxed one
    if not all(strict):
        assert set(body["parsed"]["relaxed"]) & {"price_max_inr", "ram_gb_min"}, body["parsed"]


def test_explicit_filters_narrow_the_results(gateway) -> None:
    body = gateway.post("/v1/recommendations", json={
        "query": "phone", "k": 10, "generate": False,
        "filters": {"brands": ["apple"], "price_min_inr": 40000}}).json()
    assert body["items"]
    assert all(i["brand"].lower() == "apple" and i["price_inr"] >= 40000 for i in body["items"])


def test_explain_adds_score_breakdown(gateway) -> None:
    body = gateway.post("/v1/recommendations", json={"query": "oneplus 5g", "k": 3, "generate": False,
                                                     "explain": True, "user_id": "e2e-user-2"}).json()
    assert body["items"]
    assert all(i["scores"] is not None and i["scores"]["fused"] is not None for i in body["items"])


def test_search_ranks_without_an_answer(gateway) -> None:
    response = gateway.get("/v1/search", params={"q": "redmi 6gb ram", "k": 4})
    body = response.json()
    assert response.status_code == 200, body
    assert 1 <= len(body["items"]) <= 4
    assert body["answer"] is None
    assert "generate" not in body["timings_ms"]


def test_same_user_keeps_the_same_variant(gateway) -> None:
    variants = {gateway.get("/v1/search", params={"q": "phone", "k": 1, "user_id": "e2e-ab-7"}).json()["variant"]
                for _ in range(3)}
    assert len(variants) == 1


def test_item_lookup_similar_and_popular_are_proxied(gateway) -> None:
    first = gateway.get("/v1/search", params={"q": "samsung galaxy", "k": 1}).json()["items"][0]["item_id"]
    item = gateway.get(f"/v1/items/{first}")
    assert item.status_code == 200
    assert first in item.text
    similar = gateway.get(f"/v1/items/{first}/similar", params={"k": 3})
    assert similar.status_code == 200, similar.text
    popular = gateway.get("/v1/popular", params={"k": 3})
    assert popular.status_code == 200, popular.text


def test_unknown_item_is_a_404_json(gateway) -> None:
    response = gateway.get("/v1/items/NO-SUCH-ITEM-e2e")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_session_turn_is_published_to_kafka(stack, gateway) -> None:
    session_id = f"e2e-{uuid.uuid4().hex[:12]}"
    shown = gateway.post("/v1/recommendations", json={"query": "realme under 15000", "k": 3,
                                                      "session_id": session_id, "generate": False}).json()

    async def find_turn() -> dict:
        settings = KafkaSettings(kafka_bootstrap=stack.env()["PICKWISE_KAFKA_BOOTSTRAP"])
        consumer = create_consumer(settings, [TOPIC_SESSIONS], group_id=f"e2e-{uuid.uuid4().hex[:8]}")
        await consumer.start()
        try:
            for _ in range(40):
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.key == session_id.encode():
                            return json.loads(record.value)
            return {}
        finally:
            await consumer.stop()

    turn = asyncio.run(find_turn())
    assert turn["session_id"] == session_id
    assert turn["item_ids"] == [i["item_id"] for i in shown["items"]]
    assert turn["variant"] == shown["variant"]
    assert turn["query"] == "realme under 15000"
