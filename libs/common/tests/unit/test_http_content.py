"""ServiceClient sends a body that is already JSON as-is, typed application/json."""

import json

import httpx
import pytest

from pickwise_common.http import ServiceClient

pytestmark = pytest.mark.unit


async def test_prebuilt_json_body_is_sent_unchanged() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client = ServiceClient(caller="t", target="x", base_url="http://x", transport=httpx.MockTransport(handler))
    try:
        response = await client.request("POST", "/v1/thing", content=b'{"a":1}')
    finally:
        await client.aclose()
    assert response.json() == {"ok": True}
    assert seen[0].content == b'{"a":1}'
    assert seen[0].headers["content-type"] == "application/json"
    assert json.loads(seen[0].content) == {"a": 1}


async def test_post_json_sends_json_and_decodes_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content='{"items": ["é"], "n": 2}'.encode())

    client = ServiceClient(caller="t", target="x", base_url="http://x", transport=httpx.MockTransport(handler))
    try:
        answer = await client.post_json("/v1/thing", {"query": "phone ₹15k", "k": 2})
    finally:
        await client.aclose()
    assert answer == {"items": ["é"], "n": 2}
    assert json.loads(seen[0].content) == {"query": "phone ₹15k", "k": 2}
    assert seen[0].headers["content-type"] == "application/json"


async def test_a_body_that_is_not_json_is_a_dependency_error() -> None:
    from pickwise_common.errors import DependencyUnavailable

    client = ServiceClient(caller="t", target="x", base_url="http://x",
                           transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>")))
    try:
        with pytest.raises(DependencyUnavailable, match="not JSON"):
            await client.get_json("/v1/thing")
    finally:
        await client.aclose()
