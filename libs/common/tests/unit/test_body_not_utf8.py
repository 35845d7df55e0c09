"""A JSON body that is not UTF-8 is an invalid input like any other: 422 naming the body (FastAPI alone
answers 400, which no operation documents; found by the schemathesis suite, tests/fuzz)."""

import httpx
import pytest
from pydantic import BaseModel

from pickwise_common.app import service_app
from pickwise_common.settings import ServiceSettings

pytestmark = pytest.mark.unit


class Body(BaseModel):
    query: str


async def test_a_body_that_is_not_utf8_is_a_422_naming_the_body() -> None:
    app = service_app("unit", ServiceSettings(service_name="unit"))

    @app.post("/echo")
    async def echo(body: Body) -> dict:
        return {"query": body.query}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://unit") as client:
        response = await client.post("/echo", content=b"v3\xff", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
    assert [f["field"] for f in response.json()["error"]["fields"]] == ["body"]
