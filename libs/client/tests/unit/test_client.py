"""The client against httpx.MockTransport: the header it sends, the requests each method builds, the models
it parses, and the API's JSON error body mapped to typed exceptions."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import pytest

from pickwise_client import (
    AsyncClient,
    BatchResult,
    Client,
    InvalidRequest,
    Item,
    NotFound,
    PickwiseAPIError,
    RateLimited,
    RecommendationResponse,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnexpectedResponse,
)

pytestmark = pytest.mark.unit

ITEM = {"item_id": "fm-01527", "title": "Samsung Galaxy M31 (Ocean Blue, 8 GB RAM, 128 GB)", "brand": "Samsung",
        "model": "Galaxy M31", "color": "Ocean Blue", "ram_gb": 8, "storage_gb": 128, "price_inr": 18654,
        "rating": 4.3, "price_band": "mid", "group_id": "g-1"}
RESPONSE = {"request_id": "r-1", "query": "samsung", "parsed": {"brands": ["Samsung"]}, "variant": "A",
            "degraded": False, "degradation_reasons": [], "timings_ms": {"total": 12.5},
            "items": [{**ITEM, "variant_ids": [], "score": 0.9, "rank": 1}]}


def error(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None,
          headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"error": {
        "code": code, "message": message, "fields": fields or [], "request_id": "req-9"}})


class Recorder:
    """A MockTransport handler that answers with ``response`` and keeps the requests it saw."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


def client_for(response: httpx.Response, api_key: str | None = "k-1") -> tuple[Client, Recorder]:
    recorder = Recorder(response)
    return Client("http://gw", api_key=api_key, transport=httpx.MockTransport(recorder)), recorder


def test_every_call_sends_the_api_key_header() -> None:
    client, seen = client_for(httpx.Response(200, json=ITEM))
    client.item("fm-01527")
    assert seen.requests[0].headers["x-api-key"] == "k-1"


def test_no_api_key_sends_no_header() -> None:
    client, seen = client_for(httpx.Response(200, json=ITEM), api_key=None)
    client.item("fm-01527")
    assert "x-api-key" not in seen.requests[0].headers


def test_search_sends_query_parameters_and_parses_the_response_model() -> None:
    client, seen = client_for(httpx.Response(200, json=RESPONSE))
    result = client.search("samsung", k=5, user_id="u-1")
    assert isinstance(result, RecommendationResponse)
    assert result.items[0].item_id == "fm-01527" and result.parsed.brands == ["Samsung"]
    assert seen.requests[0].url.path == "/v1/search"
    assert dict(seen.requests[0].url.params) == {"q": "samsung", "k": "5", "user_id": "u-1"}


def test_recommendations_posts_only_the_fields_given() -> None:
    client, seen = client_for(httpx.Response(200, json=RESPONSE))
    client.recommendations("samsung", k=3, filters={"price_max_inr": 20000}, explain=True)
    assert seen.requests[0].method == "POST"
    assert json.loads(seen.requests[0].content) == {"query": "samsung", "k": 3, "filters": {"price_max_inr": 20000},
                                                    "explain": True}


def test_item_id_is_escaped_as_one_path_segment() -> None:
    client, seen = client_for(httpx.Response(200, json=ITEM))
    client.item("a/b")
    assert seen.requests[0].url.raw_path == b"/v1/items/a%2Fb"


def test_item_parses_into_the_catalog_model() -> None:
    client, _ = client_for(httpx.Response(200, json=ITEM))
    assert client.item("fm-01527") == Item.model_validate(ITEM)


def test_click_posts_to_the_click_route_without_unset_fields() -> None:
    event_id = str(uuid.uuid4())
    client, seen = client_for(httpx.Response(202, json={"event_id": event_id, "status": "accepted"}))
    accepted = client.click("u-1", "fm-01527", position=2)
    assert str(accepted.event_id) == event_id
    assert seen.requests[0].url.path == "/v1/events/click"
    assert json.loads(seen.requests[0].content) == {"user_id": "u-1", "item_id": "fm-01527", "position": 2}


def test_partial_batch_207_returns_the_per_event_results() -> None:
    body = {"accepted": 1, "rejected": 1, "unavailable": 0, "results": [
        {"index": 0, "status": "accepted", "event_id": str(uuid.uuid4())},
        {"index": 1, "status": "invalid", "error": "invalid event",
         "fields": [{"field": "events.1.type", "message": "bad", "type": "enum"}]}]}
    client, seen = client_for(httpx.Response(207, json=body))
    result = client.events_batch([{"type": "click", "user_id": "u", "item_id": "i"}, {"type": "stare"}])
    assert isinstance(result, BatchResult) and result.accepted == 1 and result.results[1].status == "invalid"
    assert seen.requests[0].url.path == "/v1/events:batch"


@pytest.mark.parametrize(("status", "kind"), [(401, Unauthorized), (404, NotFound), (422, InvalidRequest),
                                              (429, RateLimited), (503, ServiceUnavailable), (500, ServerError)])
def test_error_status_maps_to_its_exception(status: int, kind: type[PickwiseAPIError]) -> None:
    client, _ = client_for(error(status, "some_code", "went wrong"))
    with pytest.raises(kind) as caught:
        client.item("fm-01527")
    assert caught.value.status_code == status and caught.value.code == "some_code"


def test_422_carries_the_offending_fields_and_request_id() -> None:
    client, _ = client_for(error(422, "invalid_input", "invalid query.k",
                                 fields=[{"field": "query.k", "message": "too big", "type": "less_than_equal"}]))
    with pytest.raises(InvalidRequest) as caught:
        client.search("phone", k=500)
    assert caught.value.field_names == ["query.k"]
    assert caught.value.request_id == "req-9"
    assert caught.value.message == "invalid query.k"


def test_retry_after_is_read_from_the_header() -> None:
    client, _ = client_for(error(503, "dependency_unavailable", "kafka down", headers={"Retry-After": "2"}))
    with pytest.raises(ServiceUnavailable) as caught:
        client.click("u-1", "fm-01527")
    assert caught.value.retry_after_s == 2.0


def test_a_non_json_error_body_is_still_a_typed_error() -> None:
    client, _ = client_for(httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(ServerError) as caught:
        client.popular()
    assert caught.value.code == "http_error" and "bad gateway" in caught.value.message


def test_a_success_body_of_the_wrong_shape_is_unexpected_response() -> None:
    client, _ = client_for(httpx.Response(200, json={"items": "not a list"}))
    with pytest.raises(UnexpectedResponse):
        client.search("phone")


async def test_async_client_sends_the_same_request_and_parses_the_same_model() -> None:
    recorder = Recorder(httpx.Response(200, json={"user_id": "u-1", "cold_start": True,
                                                  "items": [{"item": ITEM, "score": 1.0, "reason": "popular"}]}))
    async with AsyncClient("http://gw", api_key="k-2", transport=httpx.MockTransport(recorder)) as client:
        feed = await client.feed("u-1", k=3)
    assert feed.cold_start and feed.items[0].item.item_id == "fm-01527"
    assert recorder.requests[0].url.path == "/v1/users/u-1/recommendations"
    assert recorder.requests[0].headers["x-api-key"] == "k-2"


async def test_async_client_raises_the_same_typed_errors() -> None:
    recorder = Recorder(error(404, "not_found", "item 'nope' is not in the catalog"))
    async with AsyncClient("http://gw", transport=httpx.MockTransport(recorder)) as client:
        with pytest.raises(NotFound) as caught:
            await client.similar("nope")
    assert caught.value.code == "not_found"


def test_importing_the_client_pulls_in_no_server_framework() -> None:
    code = ("import sys, pickwise_client\n"
            "print(sorted({'fastapi', 'aiokafka', 'starlette', 'asyncpg'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_catalog_is_sent_as_a_query_parameter_of_every_read() -> None:
    client, seen = client_for(httpx.Response(200, json={"source": "content", "candidates": [], "item_id": "or-1",
                                                        "user_id": "u", "items": [], "cold_start": True}))
    client.popular(k=3, catalog="retail")
    client.similar("or-1", catalog="retail")
    client.feed("u", catalog="retail", explain=True)
    assert [dict(r.url.params) for r in seen.requests] == [
        {"k": "3", "catalog": "retail"}, {"k": "10", "catalog": "retail"},
        {"k": "10", "catalog": "retail", "explain": "true"}]


def test_no_catalog_sends_none_so_the_key_default_applies() -> None:
    client, seen = client_for(httpx.Response(200, json=RESPONSE))
    client.search("samsung")
    client.recommendations("samsung")
    assert "catalog" not in seen.requests[0].url.params
    assert json.loads(seen.requests[1].content) == {"query": "samsung"}


def test_recommendations_send_the_catalog_in_the_body() -> None:
    client, seen = client_for(httpx.Response(200, json=RESPONSE))
    client.recommendations("heart holder", catalog="retail")
    assert json.loads(seen.requests[0].content) == {"query": "heart holder", "catalog": "retail"}


def test_a_gbp_item_parses_with_its_currency_and_no_price_inr() -> None:
    retail = {"item_id": "or-85123A", "catalog": "retail", "title": "WHITE HANGING HEART T-LIGHT HOLDER",
              "price": 2.55, "currency": "GBP", "price_inr": None, "score": 0.9, "rank": 1}
    client, _ = client_for(httpx.Response(200, json={**RESPONSE, "catalog": "retail", "items": [retail]}))
    item = client.search("heart").items[0]
    assert (item.price, item.currency, item.price_inr, item.catalog) == (2.55, "GBP", None, "retail")


def test_an_answer_without_price_reads_price_inr_as_the_inr_price() -> None:
    client, _ = client_for(httpx.Response(200, json=RESPONSE))  # as a gateway from before catalogs answers
    item = client.search("samsung").items[0]
    assert (item.price, item.currency, item.price_inr) == (18654, "INR", 18654)


def test_bought_together_reads_its_route() -> None:
    client, seen = client_for(httpx.Response(200, json={"item_id": "or-1", "catalog": "retail", "model_version": None,
                                                        "items": []}))
    client.bought_together("or-1", k=5, catalog="retail")
    assert seen.requests[0].url.path == "/v1/items/or-1/bought-together"
    assert dict(seen.requests[0].url.params) == {"k": "5", "catalog": "retail"}


def test_a_catalog_outside_the_key_scope_is_unauthorized() -> None:
    client, _ = client_for(error(403, "forbidden", "API key 'retail' may not use catalog 'flipkart'",
                                 [{"field": "catalog", "message": "not allowed"}]))
    with pytest.raises(Unauthorized) as caught:
        client.popular(catalog="flipkart")
    assert caught.value.status_code == 403
