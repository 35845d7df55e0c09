"""Which catalog a public request is about (decision 0805): the key's scope gives the default, an unknown
catalog is a 404 naming `catalog`, a catalog outside the key's scope a 403, an event without one belongs to
the key's single catalog or its item id's; and the catalog reaches every downstream."""

import json

import httpx
import pytest

from pickwise_common.api_keys import digest
from pickwise_common.errors import Forbidden, NotFound
from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.known_items import KnownItems
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.session_events import SessionEventPublisher
from pickwise_gateway.tenancy import CatalogScope

pytestmark = pytest.mark.unit

EVERY = CatalogScope("all", ("*",))
RETAIL = CatalogScope("retail", ("retail",))
FLIPKART = CatalogScope("flipkart", ("flipkart",))
BOTH = CatalogScope("both", ("retail", "flipkart"))
RETAIL_AND_OTHER = CatalogScope("retail-plus", ("retail", "books"))

RECORDS = json.dumps([
    {"id": "all", "sha256": digest("all-key"), "scopes": ["read", "events"], "catalogs": ["*"]},
    {"id": "retail", "sha256": digest("retail-key"), "scopes": ["read", "events"], "catalogs": ["retail"]},
    {"id": "flipkart", "sha256": digest("flipkart-key"), "scopes": ["read", "events"], "catalogs": ["flipkart"]},
])


# ---------------------------------------------------------------- pure resolution

@pytest.mark.parametrize(("scope", "expected"), [(EVERY, "flipkart"), (RETAIL, "retail"), (FLIPKART, "flipkart"),
                                                 (BOTH, "flipkart"), (RETAIL_AND_OTHER, "retail"),
                                                 (CatalogScope(), "flipkart")])
def test_default_catalog_follows_the_key_scope(scope: CatalogScope, expected: str) -> None:
    assert scope.resolve(None) == expected


def test_a_named_catalog_the_key_allows_is_served() -> None:
    assert EVERY.resolve("retail") == "retail"
    assert BOTH.resolve("retail") == "retail"


def test_a_catalog_outside_the_key_scope_is_forbidden_naming_the_field() -> None:
    with pytest.raises(Forbidden) as caught:
        RETAIL.resolve("flipkart", field="query.catalog")
    assert caught.value.status_code == 403
    assert caught.value.fields[0]["field"] == "query.catalog"
    assert "retail" in caught.value.message and "flipkart" in caught.value.message


def test_an_unknown_catalog_is_not_found_naming_the_field() -> None:
    with pytest.raises(NotFound) as caught:
        EVERY.resolve("books")
    assert caught.value.status_code == 404
    assert caught.value.fields[0]["field"] == "catalog"


def test_a_key_limited_to_an_unknown_catalog_gets_404_by_default() -> None:
    with pytest.raises(NotFound):
        CatalogScope("books", ("books",)).resolve(None)


@pytest.mark.parametrize(("scope", "item_id", "expected"), [
    (RETAIL, "fm-00001", "retail"),       # the key's single catalog wins over the id's prefix
    (FLIPKART, "or-85123A", "flipkart"),
    (EVERY, "or-85123A", "retail"),       # else the id's prefix
    (EVERY, "fm-00001", "flipkart"),
    (EVERY, "i-1", "flipkart"),           # else the default
    (BOTH, "or-22423", "retail"),
])
def test_event_catalog_defaults(scope: CatalogScope, item_id: str, expected: str) -> None:
    assert scope.for_event(None, item_id) == expected


def test_event_naming_its_catalog_keeps_it() -> None:
    assert EVERY.for_event("flipkart", "or-85123A") == "flipkart"


def test_event_whose_item_prefix_is_outside_the_key_scope_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        CatalogScope("fk-plus", ("flipkart", "books")).for_event(None, "or-85123A")


# ---------------------------------------------------------------- through the gateway app

class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, str | None]] = []

    async def send(self, topic, value, *, key=None, headers=None):
        self.sent.append((topic, value, key))


def gateway(fakes) -> httpx.AsyncClient:
    settings = GatewaySettings(api_keys=RECORDS, log_json=False)
    app = create_app(settings)
    clients = fakes.clients()
    app.state.clients = clients
    app.state.recommender = Recommender(settings, clients, redis=None)
    app.state.session_events = SessionEventPublisher(RecordingProducer())
    producer = app.state.producer = RecordingProducer()
    app.state.known_items = KnownItems(None)  # no Redis: events are accepted unchecked
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    client.producer = producer  # type: ignore[attr-defined]
    return client


def _retrieve_body(fakes) -> dict:
    return json.loads(fakes.seen["retriever"][-1].content)


async def test_scoped_key_searches_its_catalog_by_default(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.get("/v1/search", params={"q": "heart holder"}, headers={"X-API-Key": "retail-key"})
    assert response.status_code == 200
    assert response.json()["catalog"] == "retail"
    assert _retrieve_body(fakes)["catalog"] == "retail"
    assert json.loads(fakes.seen["reranker"][-1].content)["catalog"] == "retail"


async def test_no_catalog_parameter_serves_flipkart_as_before(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.post("/v1/recommendations", json={"query": "samsung phone"},
                                     headers={"X-API-Key": "all-key"})
    assert response.status_code == 200
    assert response.json()["catalog"] == "flipkart"
    assert _retrieve_body(fakes)["catalog"] == "flipkart"
    assert json.loads(fakes.seen["generator"][-1].content)["catalog"] == "flipkart"


async def test_body_catalog_reaches_retriever_reranker_and_generator(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.post("/v1/recommendations", json={"query": "heart", "catalog": "retail"},
                                     headers={"X-API-Key": "all-key"})
    assert response.status_code == 200
    assert [json.loads(fakes.seen[t][-1].content)["catalog"] for t in ("retriever", "reranker", "generator")] == \
        ["retail"] * 3


@pytest.mark.parametrize(("key", "catalog"), [("retail-key", "flipkart"), ("flipkart-key", "retail")])
@pytest.mark.parametrize("path", ["/v1/search?q=x", "/v1/popular", "/v1/items/fm-00001",
                                  "/v1/items/fm-00001/similar", "/v1/users/u1/recommendations"])
async def test_key_scoped_to_one_catalog_gets_403_on_another_everywhere(fakes, key, catalog, path) -> None:
    async with gateway(fakes) as client:
        response = await client.get(path, params={"catalog": catalog}, headers={"X-API-Key": key})
    assert response.status_code == 403
    assert response.json()["error"]["fields"][0]["field"] == "catalog"
    assert "retriever" not in fakes.seen  # refused before any downstream call


@pytest.mark.parametrize("path", ["/v1/search?q=x", "/v1/popular", "/v1/items/fm-00001",
                                  "/v1/items/fm-00001/similar", "/v1/users/u1/recommendations"])
async def test_unknown_catalog_is_404_naming_it(fakes, path) -> None:
    async with gateway(fakes) as client:
        response = await client.get(path, params={"catalog": "books"}, headers={"X-API-Key": "retail-key"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_catalog"
    assert response.json()["error"]["fields"][0]["field"] == "query.catalog"


async def test_unknown_catalog_in_a_body_is_404(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.post("/v1/recommendations", json={"query": "x", "catalog": "books"},
                                     headers={"X-API-Key": "all-key"})
    assert response.status_code == 404
    assert response.json()["error"]["fields"][0]["field"] == "body.catalog"


async def test_malformed_catalog_is_422(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.get("/v1/popular", params={"catalog": "Retail!"}, headers={"X-API-Key": "all-key"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "query.catalog"


async def test_catalog_reads_pass_the_catalog_to_the_retriever(fakes) -> None:
    """An item route without ``catalog`` serves the catalog its id's prefix names (an unrestricted key)."""
    fakes.handlers["retriever"] = lambda request: httpx.Response(200, json={"source": "all", "candidates": []})
    async with gateway(fakes) as client:
        await client.get("/v1/popular", headers={"X-API-Key": "retail-key"})
        await client.get("/v1/items/or-85123A/similar", params={"k": 3}, headers={"X-API-Key": "all-key"})
        await client.get("/v1/items/fm-00001/similar", params={"k": 3}, headers={"X-API-Key": "all-key"})
        await client.get("/v1/items/or-85123A/similar", params={"k": 3, "catalog": "flipkart"},
                         headers={"X-API-Key": "all-key"})
    assert [dict(r.url.params).get("catalog") for r in fakes.seen["retriever"]] == [
        "retail", "retail", "flipkart", "flipkart"]


@pytest.mark.parametrize("k", [0, 51])
async def test_k_out_of_range_is_422(fakes, k: int) -> None:
    async with gateway(fakes) as client:
        response = await client.get("/v1/popular", params={"k": k, "catalog": "retail"},
                                    headers={"X-API-Key": "retail-key"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "query.k"


@pytest.mark.parametrize(("key", "event", "expected"), [
    ("retail-key", {"item_id": "or-85123A"}, "retail"),
    ("all-key", {"item_id": "or-85123A"}, "retail"),
    ("all-key", {"item_id": "fm-00001"}, "flipkart"),
    ("all-key", {"item_id": "i-1"}, "flipkart"),
    ("all-key", {"item_id": "i-1", "catalog": "retail"}, "retail"),
])
async def test_events_carry_the_resolved_catalog(fakes, key, event, expected) -> None:
    async with gateway(fakes) as client:
        response = await client.post("/v1/events", json={"type": "purchase", "user_id": "17850", **event},
                                     headers={"X-API-Key": key})
    assert response.status_code == 202
    topic, value, _ = client.producer.sent[-1]
    assert (topic, value["catalog"]) == ("events.interactions", expected)


async def test_click_of_a_scoped_key_on_another_catalog_is_403(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.post("/v1/events/click",
                                     json={"user_id": "u", "item_id": "fm-1", "catalog": "flipkart"},
                                     headers={"X-API-Key": "retail-key"})
    assert response.status_code == 403
    assert client.producer.sent == []


async def test_batch_event_with_an_unknown_catalog_is_invalid_alone(fakes) -> None:
    events = [{"type": "click", "user_id": "u", "item_id": "or-1", "catalog": "books"},
              {"type": "click", "user_id": "u", "item_id": "or-1"}]
    async with gateway(fakes) as client:
        response = await client.post("/v1/events:batch", json={"events": events}, headers={"X-API-Key": "all-key"})
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["invalid", "accepted"]
    assert results[0]["fields"][0]["field"] == "events.0.catalog"
    assert client.producer.sent[-1][1]["catalog"] == "retail"


async def test_items_state_their_price_and_currency(fakes) -> None:
    retail = {"item_id": "or-85123A", "catalog": "retail", "title": "WHITE HANGING HEART T-LIGHT HOLDER",
              "price": 2.55, "currency": "GBP", "category": "holder"}

    def retriever(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"query": "heart", "mode": "hybrid", "parsed": {},
                                         "candidates": [{"item": retail, "fused_score": 1.0}], "timings_ms": {}})

    fakes.handlers["retriever"] = retriever
    fakes.handlers["generator"] = fakes.refuse
    async with gateway(fakes) as client:
        response = await client.post("/v1/recommendations", json={"query": "heart"},
                                     headers={"X-API-Key": "retail-key"})
    body = response.json()
    assert response.status_code == 200
    item = body["items"][0]
    assert (item["price"], item["currency"], item["price_inr"], item["catalog"]) == (2.55, "GBP", None, "retail")
    assert "£2.55" in body["answer"]["summary"]  # the gateway's own template, generator down


async def test_flipkart_items_keep_price_inr(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.get("/v1/search", params={"q": "samsung"}, headers={"X-API-Key": "all-key"})
    item = response.json()["items"][0]
    assert (item["price"], item["currency"], item["price_inr"]) == (15000.0, "INR", 15000.0)
