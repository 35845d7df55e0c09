"""Bad input to the real gateway: a 4xx JSON error naming the problem, never a 500."""

import httpx
import pytest

pytestmark = pytest.mark.e2e

GOOD = {"query": "samsung under 20k"}
JSON_HEADERS = {"Content-Type": "application/json"}

CASES = {
    "missing query": ("POST", "/v1/recommendations", {"json": {"k": 3}}, 422, "query"),
    "empty query": ("POST", "/v1/recommendations", {"json": {"query": ""}}, 422, "query"),
    "k zero": ("POST", "/v1/recommendations", {"json": {"query": "x", "k": 0}}, 422, "k"),
    "k thousand": ("POST", "/v1/recommendations", {"json": {"query": "x", "k": 1000}}, 422, "k"),
    "k wrong type": ("POST", "/v1/recommendations", {"json": {"query": "x", "k": "ten"}}, 422, "k"),
    "query wrong type": ("POST", "/v1/recommendations", {"json": {"query": ["x"]}}, 422, "query"),
    "filters wrong type": ("POST", "/v1/recommendations", {"json": {"query": "x", "filters": "cheap"}}, 422,
                           "filters"),
    "impossible price range": ("POST", "/v1/recommendations",
                               {"json": {"query": "x", "filters": {"price_min_inr": 50000, "price_max_inr": 10000}}},
                               422, "filters"),
    "unknown field": ("POST", "/v1/recommendations", {"json": {"query": "x", "sort_by": "price"}}, 422, "sort_by"),
    "unknown filter": ("POST", "/v1/recommendations", {"json": {"query": "x", "filters": {"ram": 8}}}, 422, "ram"),
    "non-JSON body": ("POST", "/v1/recommendations", {"content": b"query=phone", "headers": JSON_HEADERS}, 422,
                      "body"),
    "JSON array body": ("POST", "/v1/recommendations", {"json": ["phone"]}, 422, "body"),
    "1 MB body": ("POST", "/v1/recommendations",
                  {"content": b'{"query": "' + b"x" * 1_000_000 + b'"}', "headers": JSON_HEADERS}, 413, None),
    "search with blank q": ("GET", "/v1/search", {"params": {"q": "   "}}, 422, "q"),
    "search without q": ("GET", "/v1/search", {"params": {"k": 3}}, 422, "q"),
    "search k too big": ("GET", "/v1/search", {"params": {"q": "x", "k": 500}}, 422, "k"),
    "bad item id": ("GET", "/v1/items/a%20b", {}, 422, "item_id"),
    "missing key": ("POST", "/v1/recommendations", {"json": GOOD, "headers": {"X-API-Key": ""}}, 401, None),
    "wrong key": ("POST", "/v1/recommendations", {"json": GOOD, "headers": {"X-API-Key": "nope"}}, 401, None),
    "wrong key on search": ("GET", "/v1/search", {"params": {"q": "x"}, "headers": {"X-API-Key": "nope"}}, 401,
                            None),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_a_4xx_naming_the_problem(stack, api_key, case: str) -> None:
    method, path, kwargs, status, field = CASES[case]
    kwargs = dict(kwargs)
    headers = {"X-API-Key": api_key} | kwargs.pop("headers", {})
    response = httpx.request(method, stack.url("gateway") + path, headers=headers, timeout=15, **kwargs)
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert error["message"]
    assert error["request_id"]
    if field is not None:
        assert any(field in f["field"] for f in error["fields"]), error
