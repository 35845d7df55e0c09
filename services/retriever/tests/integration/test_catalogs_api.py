"""Two catalogs served by one retriever, over HTTP against the session's stack (the launcher ingested both,
flipkart and retail, into the real Postgres, Milvus Lite and Redis): every answer comes from the catalog the
request names, never from the other; an unknown catalog is a 404 naming the field."""

import httpx
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(stack) -> str:
    return stack.url("retriever")


def retrieve(url: str, **body) -> httpx.Response:
    return httpx.post(url + "/v1/retrieve", json=body, timeout=30)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_retail_query_returns_only_retail_items(url: str, mode: str) -> None:
    body = retrieve(url, query="red retrospot lunch bag", catalog="retail", mode=mode, k=20).json()
    ids = [c["item"]["item_id"] for c in body["candidates"]]
    assert len(ids) == 20 and all(i.startswith("or-") for i in ids)
    assert "LUNCH BAG" in body["candidates"][0]["item"]["title"]
    assert {c["item"]["currency"] for c in body["candidates"]} == {"GBP"}


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_phone_words_in_the_retail_catalog_never_reach_the_phones(url: str, mode: str) -> None:
    body = retrieve(url, query="samsung galaxy phone", catalog="retail", mode=mode, k=30).json()
    assert all(c["item"]["item_id"].startswith("or-") for c in body["candidates"])
    assert body["parsed"]["brands"] == []


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_flipkart_is_the_default_and_never_returns_retail_items(url: str, mode: str) -> None:
    body = retrieve(url, query="heart t-light holder lunch bag", mode=mode, k=30).json()
    assert body["candidates"]
    assert all(c["item"]["item_id"].startswith("fm-") for c in body["candidates"])


def test_retail_price_is_read_in_pounds(url: str) -> None:
    body = retrieve(url, query="lunch bag under £2", catalog="retail", k=10).json()
    assert body["parsed"]["price_max_inr"] == 2
    assert body["candidates"]
    assert all(c["item"]["price"] <= 2 for c in body["candidates"])
    assert [v["label"] for v in body["facets"]["price"]][0].startswith("Under £")


def test_item_lookup_by_catalog(url: str) -> None:
    item = httpx.get(url + "/v1/items/or-85123A", timeout=10).json()
    assert (item["catalog"], item["currency"], item["title"]) == ("retail", "GBP", "WHITE HANGING HEART T-LIGHT HOLDER")
    assert item["price_inr"] is None and 2 < item["price"] < 3.5
    response = httpx.get(url + "/v1/items/fm-00001", params={"catalog": "retail"}, timeout=10)
    assert response.status_code == 404


def test_similar_and_popular_stay_in_the_catalog(url: str) -> None:
    similar = httpx.get(url + "/v1/items/or-85123A/similar", params={"k": 10}, timeout=30).json()
    assert similar["candidates"] and all(c["item"]["item_id"].startswith("or-") for c in similar["candidates"])
    popular = httpx.get(url + "/v1/popular", params={"catalog": "retail", "k": 10}, timeout=30).json()
    assert len(popular["candidates"]) == 10
    assert all(c["item"]["item_id"].startswith("or-") for c in popular["candidates"])
    phones = httpx.get(url + "/v1/popular", params={"k": 10}, timeout=30).json()
    assert all(c["item"]["item_id"].startswith("fm-") for c in phones["candidates"])


@pytest.mark.parametrize(("method", "path", "kwargs"), [
    ("POST", "/v1/retrieve", {"json": {"query": "mug", "catalog": "nosuch"}}),
    ("GET", "/v1/popular", {"params": {"catalog": "nosuch"}}),
    ("GET", "/v1/items/or-85123A", {"params": {"catalog": "nosuch"}}),
    ("GET", "/v1/items/or-85123A/similar", {"params": {"catalog": "nosuch"}}),
])
def test_unknown_catalog_is_a_404_naming_the_field(url: str, method: str, path: str, kwargs: dict) -> None:
    response = httpx.request(method, url + path, timeout=10, **kwargs)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_catalog"
    assert error["fields"][0]["field"] == "catalog"
