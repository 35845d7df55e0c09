"""Explicit filters through the real gateway and retriever: read like parsed constraints ('samsung', 'ocean blue'),
a value that cannot be understood is a 422 naming it and never trips a circuit breaker, and an over-constrained
query still fills the page, strict matches first, saying what it relaxed (decisions 0731-0733)."""

import httpx
import pytest

from pickwise_common.constraints import color_words

pytestmark = pytest.mark.e2e


def recommend(stack, api_key: str, **body) -> httpx.Response:
    return httpx.post(stack.url("gateway") + "/v1/recommendations", json={"generate": False} | body,
                      headers={"X-API-Key": api_key}, timeout=30)


def test_lower_case_brand_filter_with_a_parsed_brand_returns_that_brand(stack, api_key) -> None:
    body = recommend(stack, api_key, query="samsung phone", filters={"brands": ["samsung"]}).json()
    assert body["parsed"]["brands"] == ["Samsung"]
    assert body["items"] and {i["brand"] for i in body["items"]} == {"Samsung"}
    assert "retriever_unavailable" not in body["degradation_reasons"]


def test_samsung_in_ocean_blue(stack, api_key) -> None:
    response = recommend(stack, api_key, query="samsung phone",
                         filters={"brands": ["samsung"], "colors": ["ocean blue"]})
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["parsed"]["colors"] == ["ocean blue"]
    assert body["items"]
    assert all(i["brand"] == "Samsung" and "ocean blue" in " ".join(color_words(i["color"])) for i in body["items"])
    assert "retriever_unavailable" not in body["degradation_reasons"]


def test_hyphenated_colour_filter_is_understood(stack, api_key) -> None:
    body = recommend(stack, api_key, query="phone", filters={"colors": ["Rose-Gold"]}).json()
    assert body["parsed"]["colors"] == ["rose gold"]
    assert body["items"] and all("rose gold" in " ".join(color_words(i["color"])) for i in body["items"])


@pytest.mark.parametrize(("filters", "field"), [
    ({"colors": ["<script>"]}, "body.filters.colors.0"),
    ({"brands": ["samsung", "Acme Phones"]}, "body.filters.brands.1"),
])
def test_a_filter_value_not_understood_is_a_422_naming_it(stack, api_key, filters: dict, field: str) -> None:
    response = recommend(stack, api_key, query="phone", filters=filters)
    assert response.status_code == 422, response.text[:300]
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]


def test_the_retriever_answers_a_bad_filter_with_a_422_too(stack) -> None:
    response = httpx.post(stack.url("retriever") + "/v1/retrieve", timeout=30,
                          json={"query": "phone", "filters": {"colors": ["<script>"]}})
    assert response.status_code == 422, response.text[:300]
    assert [f["field"] for f in response.json()["error"]["fields"]] == ["body.filters.colors.0"]


def test_twenty_bad_filters_never_open_the_retriever_breaker(stack, api_key) -> None:
    bad = [{"colors": ["<script>"]}, {"colors": ["x) or (1"]}, {"brands": ["nope-brand"]}, {"colors": ["%"]}]
    for n in range(20):
        assert recommend(stack, api_key, query=f"phone {n}", filters=bad[n % len(bad)]).status_code == 422
    body = recommend(stack, api_key, query="samsung under 20000", k=5).json()
    assert body["items"]
    assert "retriever_unavailable" not in body["degradation_reasons"]


def test_over_constrained_query_fills_the_page_strict_first_and_says_what_it_relaxed(stack, api_key) -> None:
    # one OPPO model has 8 GB RAM under ₹15,000 in the catalog: the page is filled by relaxing price, then RAM
    body = recommend(stack, api_key, query="oppo 8gb ram under 15000", k=10).json()
    items = body["items"]
    assert len(items) == 10
    assert body["parsed"]["relaxed"] == ["price_max_inr", "ram_gb_min"]
    assert body["parsed"]["price_max_inr"] == 15000 and body["parsed"]["ram_gb_min"] == 8
    strict = [i["price_inr"] <= 15000 and (i["ram_gb"] or 0) >= 8 for i in items]
    assert strict[0] and not all(strict)
    assert strict == sorted(strict, reverse=True)  # every strict match before every relaxed one
    assert all(i["brand"] == "OPPO" for i in items)
