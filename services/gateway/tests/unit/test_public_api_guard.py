"""What a /v1 request passes before its route: key records, scopes, catalogs, text hygiene, list bounds,
rate limits without a key, security headers, admission control, and how downstream errors reach the client."""

import json
import re
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from pickwise_common.api_keys import digest
from pickwise_gateway.app import create_app
from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.recommendation import Recommender
from pickwise_gateway.session_events import SessionEventPublisher
from pickwise_gateway.web import page_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[4]
RECORDS = json.dumps([
    {"id": "web-old", "sha256": digest("old-key"), "scopes": ["read", "events"], "catalogs": ["*"]},
    {"id": "web-new", "sha256": digest("new-key"), "scopes": ["read", "events"], "catalogs": ["*"]},
    {"id": "reader", "sha256": digest("read-only"), "scopes": ["read"], "catalogs": ["*"]},
    {"id": "retail", "sha256": digest("retail-only"), "scopes": ["read", "events"], "catalogs": ["retail"]},
])


class NullProducer:
    async def send(self, topic, value, *, key=None, headers=None):
        return None


def gateway(fakes, **overrides) -> httpx.AsyncClient:
    settings = GatewaySettings(**({"api_keys": RECORDS} | overrides))
    app = create_app(settings)
    clients = fakes.clients()
    app.state.clients = clients
    app.state.recommender = Recommender(settings, clients, redis=None)
    app.state.session_events = SessionEventPublisher(NullProducer())
    app.state.producer = NullProducer()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("key", ["old-key", "new-key"])
async def test_both_keys_of_a_rotation_are_accepted(fakes, key: str) -> None:
    async with gateway(fakes) as client:
        response = await client.get("/v1/search", params={"q": "samsung"}, headers={"X-API-Key": key})
    assert response.status_code == 200


async def test_a_digest_is_not_a_key(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.get("/v1/search", params={"q": "x"}, headers={"X-API-Key": digest("old-key")})
    assert response.status_code == 401


async def test_key_without_events_scope_gets_403_on_event_endpoints(fakes) -> None:
    async with gateway(fakes) as client:
        read = await client.get("/v1/search", params={"q": "samsung"}, headers={"X-API-Key": "read-only"})
        event = await client.post("/v1/events", json={"user_id": "u1", "item_id": "a", "type": "click"},
                                  headers={"X-API-Key": "read-only"})
    assert read.status_code == 200
    assert event.status_code == 403
    assert "events" in event.json()["error"]["message"] and "reader" in event.json()["error"]["message"]


@pytest.mark.parametrize("how", ["query", "body"])
async def test_key_limited_to_one_catalog_gets_403_for_another(fakes, how: str) -> None:
    async with gateway(fakes) as client:
        if how == "query":
            response = await client.get("/v1/search", params={"q": "phone", "catalog": "flipkart"},
                                        headers={"X-API-Key": "retail-only"})
        else:
            response = await client.post("/v1/recommendations", json={"query": "phone", "catalog": "flipkart"},
                                         headers={"X-API-Key": "retail-only"})
    assert response.status_code == 403
    assert "flipkart" in response.json()["error"]["message"]
    assert response.json()["error"]["fields"][0]["field"] == "catalog"


async def test_key_limited_to_one_catalog_may_use_it(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.get("/v1/search", params={"q": "phone", "catalog": "retail"},
                                    headers={"X-API-Key": "retail-only"})
    assert response.status_code == 200


def test_plain_keys_are_refused_outside_a_local_environment() -> None:
    with pytest.raises(ValidationError, match="sha256"):
        GatewaySettings(api_keys="dev-local-key")
    assert GatewaySettings(api_keys="dev-local-key", environment="local").api_keys[0].id == "local-1"


def test_page_embeds_a_key_only_in_a_local_environment() -> None:
    assert page_config(GatewaySettings(api_keys="dev-local-key", environment="local"))["apiKey"] == "dev-local-key"
    assert "apiKey" not in page_config(GatewaySettings(api_keys=RECORDS, environment="production"))


def test_docker_image_never_embeds_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image's environment is production and names no key; with a key record given at run time, as a
    deployment does, the page carries no key."""
    dockerfile = (REPO / "deploy/docker/Dockerfile").read_text()
    env = dict(re.findall(r"(PICKWISE_[A-Z_]+)=(\S+)", dockerfile))
    assert env.get("PICKWISE_ENVIRONMENT") == "production"
    assert "PICKWISE_API_KEYS" not in env and "PICKWISE_WEB_EMBED_KEY" not in env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PICKWISE_API_KEYS", RECORDS)
    config = page_config(GatewaySettings())
    assert config["embeddedKey"] is False and "apiKey" not in config


# ---------------------------------------------------------------- text and lists


@pytest.mark.parametrize("text", ["samsung\u202e", "sam\u200bsung", "samsung\u0085", "sam\x07sung"],
                         ids=["bidi-override", "zero-width", "c1-control", "c0-control"])
async def test_invisible_or_control_characters_in_a_query_are_422_naming_the_field(fakes, text: str) -> None:
    async with gateway(fakes) as client:
        body = await client.post("/v1/recommendations", json={"query": text}, headers={"X-API-Key": "new-key"})
        search = await client.get("/v1/search", params={"q": text}, headers={"X-API-Key": "new-key"})
    assert body.status_code == 422 and body.json()["error"]["fields"][0]["field"] == "body.query"
    assert search.status_code == 422 and search.json()["error"]["fields"][0]["field"] == "query.q"


async def test_ids_with_bidi_controls_are_422(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.post("/v1/recommendations", json={"query": "phone", "user_id": "u\u20661"},
                                     headers={"X-API-Key": "new-key"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "body.user_id"


async def test_queries_are_nfkc_normalised(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.get("/v1/search", params={"q": "ｓａｍｓｕｎｇ ﬁve"}, headers={"X-API-Key": "new-key"})
    assert response.status_code == 200
    assert response.json()["query"] == "samsung five"
    sent = json.loads(fakes.seen["retriever"][-1].content)
    assert sent["query"] == "samsung five"


async def test_filter_lists_are_bounded(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.post("/v1/recommendations",
                                     json={"query": "phone", "filters": {"brands": [f"b{i}" for i in range(21)]}},
                                     headers={"X-API-Key": "new-key"})
    assert response.status_code == 422
    assert any("brands" in f["field"] for f in response.json()["error"]["fields"])


async def test_any_body_list_past_the_largest_endpoint_limit_is_422(fakes) -> None:
    async with gateway(fakes) as client:
        response = await client.post("/v1/recommendations", json={"query": "phone", "extra": list(range(501))},
                                     headers={"X-API-Key": "new-key"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "body.extra"


# ---------------------------------------------------------------- 401s are limited too


async def test_requests_without_a_valid_key_are_rate_limited_by_ip(fakes) -> None:
    async with gateway(fakes, rate_limit_unauthenticated_per_minute=3) as client:
        statuses = [(await client.get("/v1/search", params={"q": "x"}, headers={"X-API-Key": f"guess-{i}"}))
                    for i in range(4)]
    assert [r.status_code for r in statuses] == [401, 401, 401, 429]
    assert int(statuses[-1].headers["Retry-After"]) >= 1


async def test_a_shopper_is_limited_apart_from_the_key(fakes) -> None:
    async with gateway(fakes, rate_limit_per_client_per_minute=1) as client:
        first = await client.get("/v1/search", params={"q": "x", "user_id": "u1"}, headers={"X-API-Key": "new-key"})
        again = await client.get("/v1/search", params={"q": "x", "user_id": "u1"}, headers={"X-API-Key": "new-key"})
        other = await client.get("/v1/search", params={"q": "x", "user_id": "u2"}, headers={"X-API-Key": "new-key"})
    assert [first.status_code, again.status_code, other.status_code] == [200, 429, 200]


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize("path", ["/", "/healthz", "/v1/search?q=x", "/v1/nothing-here"])
async def test_every_response_carries_the_security_headers(fakes, path: str) -> None:
    async with gateway(fakes) as client:
        response = await client.get(path, headers={"X-API-Key": "new-key"})
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers


async def test_hsts_only_behind_tls_or_a_trusted_proxy_saying_so(fakes) -> None:
    async with gateway(fakes) as client:
        untrusted = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    async with gateway(fakes, trusted_proxies="127.0.0.1") as client:
        trusted = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in untrusted.headers
    assert trusted.headers["strict-transport-security"].startswith("max-age=")


# ---------------------------------------------------------------- downstream errors


async def test_downstream_4xx_for_bad_input_is_a_4xx_and_never_opens_the_breaker(fakes) -> None:
    def reject(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"error": {"code": "invalid_input", "message": "bad colour",
                                                   "fields": [{"field": "filters.colors", "message": "x"}]}})

    async with gateway(fakes) as client:
        fakes.handlers["retriever"] = reject
        statuses = [(await client.post("/v1/recommendations", json={"query": "ocean blue phone"},
                                       headers={"X-API-Key": "new-key"})).status_code for _ in range(20)]
        fakes.handlers["retriever"] = fakes.retriever
        ordinary = await client.get("/v1/search", params={"q": "samsung under 20000"},
                                    headers={"X-API-Key": "new-key"})
    assert statuses == [422] * 20
    assert ordinary.status_code == 200 and ordinary.json()["degraded"] is False


async def test_downstream_fast_503_is_degradable_and_never_opens_the_breaker(fakes) -> None:
    def shed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "1"},
                              json={"error": {"code": "overloaded", "message": "reranker is at capacity"}})

    async with gateway(fakes) as client:
        fakes.handlers["reranker"] = shed
        answers = [await client.get("/v1/search", params={"q": "samsung"}, headers={"X-API-Key": "new-key"})
                   for _ in range(20)]
        fakes.handlers["reranker"] = fakes.reranker
        after = await client.get("/v1/search", params={"q": "samsung"}, headers={"X-API-Key": "new-key"})
    assert {a.status_code for a in answers} == {200}
    assert all(a.json()["degradation_reasons"] == ["reranker_unavailable"] for a in answers)
    assert len(fakes.seen["reranker"]) == 21, "a shed call is not retried"
    assert after.json()["degraded"] is False, "the breaker stayed closed"


async def test_docs_page_runs_under_its_policy(fakes) -> None:
    """The docs CSP allows no inline script, so the page must load script files only."""
    async with gateway(fakes) as client:
        response = await client.get("/docs")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, flags=re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)


async def test_logs_name_the_key_id_never_the_key(fakes) -> None:
    import io
    import logging

    from pickwise_common.telemetry import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("gateway"))
    logger = logging.getLogger("pickwise")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with gateway(fakes) as client:
            await client.post("/v1/events", json={"user_id": "u1", "item_id": "a", "type": "click"},
                              headers={"X-API-Key": "read-only"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    rejected = [line for line in lines if line["msg"].startswith("rejected")]
    assert rejected and rejected[0]["api_key_id"] == "reader"
    assert "read-only" not in stream.getvalue()
