"""Catalogs as tenants through a real gateway process on the real stack (decision 0805): a key scoped to
`retail` gets 403 on `catalog=flipkart` and a key scoped to `flipkart` gets 403 on `catalog=retail`, on every
public endpoint; an unknown catalog is a 404 naming `catalog`; `k` out of range is a 422; each key's default
catalog is its own, and the answers state the currency."""

import json

import httpx
import pytest

from pickwise_common.api_keys import digest

pytestmark = pytest.mark.e2e

KEYS = {"every": ("e2e-every-key", ["*"]), "retail": ("e2e-retail-key", ["retail"]),
        "flipkart": ("e2e-flipkart-key", ["flipkart"])}
RECORDS = json.dumps([{"id": f"e2e-{name}", "sha256": digest(key), "scopes": ["read", "events"], "catalogs": cats}
                      for name, (key, cats) in KEYS.items()])


@pytest.fixture(scope="module")
def scoped_gateway(stack):
    """An extra gateway whose API keys are records scoped to catalogs (the shared gateway's key is untouched)."""
    proc, url = stack.start_extra("gateway", {"PICKWISE_API_KEYS": RECORDS, "PICKWISE_RATE_LIMIT_REDIS": "false",
                                              "PICKWISE_RATE_LIMIT_PER_MINUTE": "100000",
                                              "PICKWISE_RATE_LIMIT_PER_CLIENT_PER_MINUTE": "100000"})
    try:
        yield url
    finally:
        proc.stop()


def client(url: str, name: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-API-Key": KEYS[name][0]}, timeout=30)


def call(http: httpx.Client, method: str, path: str, payload: dict, catalog: str | None) -> httpx.Response:
    """One public endpoint with `catalog` as a query parameter (GET) or a body field (POST)."""
    extra = {"catalog": catalog} if catalog else {}
    if method == "GET":
        return http.get(path, params=payload | extra)
    return http.post(path, json=payload | extra)


ENDPOINTS = [
    ("GET", "/v1/search", {"q": "gift", "k": 3}),
    ("GET", "/v1/popular", {"k": 3}),
    ("GET", "/v1/items/fm-00001", {}),
    ("GET", "/v1/items/fm-00001/similar", {"k": 3}),
    ("GET", "/v1/items/or-85123A/bought-together", {"k": 3}),
    ("GET", "/v1/users/e2e-tenant/recommendations", {"k": 3}),
    ("POST", "/v1/recommendations", {"query": "gift", "k": 3, "generate": False}),
    ("POST", "/v1/events", {"type": "click", "user_id": "e2e-tenant", "item_id": "fm-00001"}),
    ("POST", "/v1/events/click", {"user_id": "e2e-tenant", "item_id": "fm-00001"}),
]
IDS = [f"{method} {path}" for method, path, _ in ENDPOINTS]


@pytest.mark.parametrize(("key", "other"), [("retail", "flipkart"), ("flipkart", "retail")])
@pytest.mark.parametrize(("method", "path", "payload"), ENDPOINTS, ids=IDS)
def test_a_key_scoped_to_one_catalog_gets_403_on_the_other(scoped_gateway, key, other, method, path,
                                                           payload) -> None:
    with client(scoped_gateway, key) as http:
        response = call(http, method, path, payload, other)
    assert response.status_code == 403, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "forbidden" and other in error["message"]
    assert error["fields"][0]["field"] == "catalog"


def test_a_batch_naming_a_forbidden_catalog_is_403(scoped_gateway) -> None:
    events = [{"type": "click", "user_id": "e2e-tenant", "item_id": "fm-00001", "catalog": "flipkart"}]
    with client(scoped_gateway, "retail") as http:
        response = http.post("/v1/events:batch", json={"events": events})
    assert response.status_code == 403


@pytest.mark.parametrize(("method", "path", "payload"), ENDPOINTS, ids=IDS)
def test_an_unknown_catalog_is_404_naming_it(scoped_gateway, method, path, payload) -> None:
    with client(scoped_gateway, "every") as http:
        response = call(http, method, path, payload, "books")
    assert response.status_code == 404, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "unknown_catalog"
    assert error["fields"][0]["field"].endswith("catalog")


@pytest.mark.parametrize("k", [0, 51])
@pytest.mark.parametrize("path", ["/v1/search?q=gift", "/v1/popular", "/v1/items/fm-00001/similar"])
def test_k_out_of_range_is_422(scoped_gateway, path, k) -> None:
    with client(scoped_gateway, "retail") as http:
        response = http.get(path, params={"k": k, "catalog": "retail"})
    assert response.status_code == 422, response.text[:300]
    assert any(f["field"] == "query.k" for f in response.json()["error"]["fields"])


def test_recommendation_k_out_of_range_is_422(scoped_gateway) -> None:
    with client(scoped_gateway, "retail") as http:
        response = http.post("/v1/recommendations", json={"query": "gift", "k": 500, "catalog": "retail"})
    assert response.status_code == 422
    assert any(f["field"].endswith("k") for f in response.json()["error"]["fields"])


def test_without_catalog_a_flipkart_key_and_an_unscoped_key_search_flipkart_in_rupees(scoped_gateway) -> None:
    for name in ("flipkart", "every"):
        with client(scoped_gateway, name) as http:
            response = http.get("/v1/search", params={"q": "samsung 8gb ram", "k": 3})
        body = response.json()
        assert response.status_code == 200
        assert body["catalog"] == "flipkart" and body["items"]
        for item in body["items"]:
            assert item["item_id"].startswith("fm-")
            assert item["currency"] == "INR" and item["price"] == item["price_inr"] > 0


def test_without_catalog_a_retail_key_searches_retail_in_pounds(scoped_gateway) -> None:
    with client(scoped_gateway, "retail") as http:
        response = http.post("/v1/recommendations", json={"query": "heart t-light holder", "k": 3})
    body = response.json()
    assert response.status_code == 200, response.text[:300]
    assert body["catalog"] == "retail" and body["items"]
    for item in body["items"]:
        assert item["item_id"].startswith("or-") and item["catalog"] == "retail"
        assert item["currency"] == "GBP" and item["price"] > 0 and item["price_inr"] is None
    assert "£" in body["answer"]["summary"] and "₹" not in body["answer"]["summary"]


def test_a_retail_key_cannot_read_a_flipkart_item_by_its_id(scoped_gateway) -> None:
    with client(scoped_gateway, "retail") as http:
        response = http.get("/v1/items/fm-00001")
    assert response.status_code == 404


def test_an_event_of_a_retail_key_goes_to_retail(scoped_gateway) -> None:
    with client(scoped_gateway, "retail") as http:
        retail = http.post("/v1/events/click", json={"user_id": "e2e-tenant", "item_id": "or-85123A"})
        flipkart_item = http.post("/v1/events/click", json={"user_id": "e2e-tenant", "item_id": "fm-00001"})
    assert retail.status_code == 202, retail.text[:300]
    # fm-00001 is not an item of the retail catalog, the key's only one
    assert flipkart_item.status_code == 422
    assert flipkart_item.json()["error"]["fields"][0]["field"] == "body.item_id"
