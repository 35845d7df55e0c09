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
