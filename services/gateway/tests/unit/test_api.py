"""The HTTP surface of the gateway without a network: auth, rate limit, validation, proxies, the page."""

import asyncio
import json

import httpx
import pytest

from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.session_events import SessionEventPublisher

pytestmark = pytest.mark.unit

KEY = "unit-key"


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, str | None]] = []

    async def send(self, topic, value, *, key=None, headers=None):
        self.sent.append((topic, value, key))


def build(fakes, **overrides):
    settings = GatewaySettings(api_keys=KEY, environment="local", **overrides)
    app = create_app(settings)
    clients = fakes.clients()
    app.state.clients = clients
    app.state.recommender = Recommender(settings, clients, redis=None)
    producer = RecordingProducer()
    app.state.session_events = SessionEventPublisher(producer)
    return app, producer


@pytest.fixture
def gateway(fakes):
    app, producer = build(fakes)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                               headers={"X-API-Key": KEY})
    client.producer = producer
    return client


async def test_recommendations_ok(gateway) -> None:
    response = await gateway.post("/v1/recommendations", json={"query": "samsung", "k": 2})
    body = response.json()
    assert response.status_code == 200
    assert len(body["items"]) == 2
    # an anonymous request is assigned by its session: either variant, or the challenger's share (decision 1006)
    assert body["variant"] in {"A", "B", "challenger"}
    assert body["request_id"] == response.headers["x-request-id"]


async def test_search_has_no_answer(gateway) -> None:
    response = await gateway.get("/v1/search", params={"q": "samsung", "k": 3})
    assert response.status_code == 200
    assert response.json()["answer"] is None
    assert len(response.json()["items"]) == 3


async def test_session_event_is_published_with_the_shown_items(gateway) -> None:
    response = await gateway.post("/v1/recommendations", json={"query": "samsung", "k": 2, "session_id": "s-9",
                                                              "user_id": "u-9"})
    await asyncio.sleep(0.05)
    topic, value, key = gateway.producer.sent[0]
    assert (topic, key) == ("events.sessions", "s-9")
    assert value["item_ids"] == [i["item_id"] for i in response.json()["items"]]
    assert value["variant"] == response.json()["variant"]
    assert value["query"] == "samsung"


async def test_no_session_event_without_session_id(gateway) -> None:
    await gateway.post("/v1/recommendations", json={"query": "samsung"})
    await asyncio.sleep(0.05)
    assert gateway.producer.sent == []


BAD_BODIES = {
    "missing query": ({"k": 3}, "query"),
    "empty query": ({"query": ""}, "query"),
    "blank query": ({"query": "   "}, "query"),
    "k zero": ({"query": "x", "k": 0}, "k"),
    "k thousand": ({"query": "x", "k": 1000}, "k"),
    "k wrong type": ({"query": "x", "k": "ten"}, "k"),
    "query wrong type": ({"query": 42}, "query"),
    "unknown field": ({"query": "x", "colour": "red"}, "colour"),
    "unknown filter": ({"query": "x", "filters": {"brandz": ["a"]}}, "brandz"),
    "bad user id": ({"query": "x", "user_id": "a b"}, "user_id"),
    "negative price": ({"query": "x", "filters": {"price_max_inr": -1}}, "price_max_inr"),
    "impossible price range": ({"query": "x", "filters": {"price_min_inr": 5e4, "price_max_inr": 1e4}}, "filters"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES), ids=list(BAD_BODIES))
async def test_bad_body_is_a_422_naming_the_field(gateway, case: str) -> None:
    payload, field = BAD_BODIES[case]
    response = await gateway.post("/v1/recommendations", json=payload)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert any(field in f["field"] for f in error["fields"]), error


async def test_non_json_body_is_a_4xx(gateway) -> None:
    response = await gateway.post("/v1/recommendations", content=b"query=phone",
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_one_megabyte_body_is_413(gateway) -> None:
    response = await gateway.post("/v1/recommendations",
                                  content=json.dumps({"query": "x" * 1_000_000}).encode(),
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}], ids=["missing", "wrong"])
async def test_key_is_required_under_v1(fakes, headers) -> None:
    app, _ = build(fakes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        response = await client.post("/v1/recommendations", json={"query": "x"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/")).status_code == 200


async def test_rate_limit_answers_429_with_retry_after(fakes) -> None:
    app, _ = build(fakes, rate_limit_per_minute=60, rate_limit_burst=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                                 headers={"X-API-Key": KEY}) as client:
        statuses = [(await client.get("/v1/search", params={"q": "x"})).status_code for _ in range(3)]
        last = await client.get("/v1/search", params={"q": "x"})
    assert statuses == [200, 200, 429]
    assert int(last.headers["Retry-After"]) >= 1
    assert last.json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("params", [{"q": ""}, {"q": "   "}, {"q": "x", "k": 0}, {"q": "x", "k": 51}, {"k": 3},
                                    {"q": "x", "k": "many"}], ids=["empty", "blank", "k0", "k51", "no-q", "k-type"])
async def test_bad_search_params_are_422(gateway, params) -> None:
    response = await gateway.get("/v1/search", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["fields"]


async def test_item_404_passes_through(gateway, fakes) -> None:
    fakes.handlers["retriever"] = lambda request: httpx.Response(
        404, json={"error": {"code": "not_found", "message": "item 'zz' is not in the catalog"}})
    response = await gateway.get("/v1/items/zz")
    assert response.status_code == 404
    assert "zz" in response.json()["error"]["message"]


async def test_similar_proxies_k(gateway, fakes) -> None:
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json={"items": [], "k": request.url.params["k"]})
    response = await gateway.get("/v1/items/abc/similar", params={"k": 4})
    assert response.status_code == 200
    assert response.json()["k"] == "4"


async def test_catalog_read_with_retriever_down_is_503(gateway, fakes) -> None:
    fakes.handlers["retriever"] = fakes.refuse
    response = await gateway.get("/v1/popular")
    assert response.status_code == 503
    assert "Retry-After" in response.headers


async def test_page_embeds_the_first_key_only_when_enabled(fakes) -> None:
    for embed, expected in ((True, True), (False, False)):
        app, _ = build(fakes, web_embed_key=embed)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            page = (await client.get("/")).text
            script = await client.get("/static/app.js")
        assert ("unit-key" in page) is expected
        assert 'id="query"' in page
        assert script.status_code == 200 and "/v1/events/click" in script.text


async def test_openapi_declares_the_api_key_and_examples(gateway) -> None:
    schema = (await gateway.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"
    operation = schema["paths"]["/v1/recommendations"]["post"]
    assert operation["security"] == [{"ApiKeyAuth": []}]
    assert schema["components"]["schemas"]["RecommendationRequest"]["examples"]


async def test_rejected_paths_do_not_become_metric_labels(fakes) -> None:
    app, _ = build(fakes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        await client.get("/v1/items/probe-7f3a9c", headers={"X-API-Key": "wrong"})
        metrics = (await client.get("/metrics")).text
    assert "probe-7f3a9c" not in metrics
    assert 'route="/v1/* (rejected)"' in metrics


ODD_REQUESTS = [
    ("POST", "/v1/recommendations", {"json": None}),
    ("POST", "/v1/recommendations", {"json": "phone"}),
    ("POST", "/v1/recommendations", {"json": {"query": None}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x" * 501}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x", "k": 10.5}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x", "k": True}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x", "filters": []}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x", "filters": {"brands": "apple"}}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x", "filters": {"sort": "random"}}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x", "filters": {"rating_min": 9}}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x", "generate": "maybe"}}),
    ("POST", "/v1/recommendations", {"json": {"query": "x", "session_id": "x" * 200}}),
    ("POST", "/v1/recommendations", {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/v1/recommendations", {"content": b'{"query": "x"', "headers": {"Content-Type": "application/json"}}),
    ("POST", "/v1/recommendations", {"content": b"", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/v1/recommendations", {"content": b'{"query": "x"}', "headers": {"Content-Type": "text/plain"}}),
    ("GET", "/v1/recommendations", {}),
    ("GET", "/v1/search", {"params": {"q": "\x00"}}),
    ("GET", "/v1/search", {"params": {"q": "x" * 600}}),
    ("GET", "/v1/search", {"params": {"q": "x", "session_id": "../etc"}}),
    ("GET", "/v1/items/%2e%2e", {}),
    ("GET", "/v1/items/" + "a" * 200, {}),
    ("GET", "/v1/popular", {"params": {"k": -1}}),
    ("DELETE", "/v1/items/abc", {}),
    ("GET", "/v1/nothing-here", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ODD_REQUESTS,
                         ids=[f"{m} {p[:30]} {i}" for i, (m, p, _) in enumerate(ODD_REQUESTS)])
async def test_odd_requests_get_a_json_4xx_never_a_500(gateway, method, path, kwargs) -> None:
    response = await gateway.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.json()["error"]["message"]
