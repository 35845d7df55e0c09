"""The service app factory: health, readiness, metrics, JSON errors, request ids, body limit."""

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from pickwise_common.app import require_api_key, service_app
from pickwise_common.errors import NotFound
from pickwise_common.settings import ServiceSettings

pytestmark = pytest.mark.unit


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1)
    k: int = Field(default=10, ge=1, le=50)


def make_app(**settings) -> FastAPI:
    app = service_app("unit", ServiceSettings(service_name="unit", api_keys="a,b", max_body_bytes=1000, **settings))

    @app.post("/echo")
    async def echo(body: Body) -> dict:
        return body.model_dump()

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict:
        raise NotFound(f"item {item_id!r} is not in the catalog")

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("bug")

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                             base_url="http://t")


async def test_healthz_answers_ok() -> None:
    async with client(make_app()) as c:
        response = await c.get("/healthz")
    assert response.json() == {"status": "ok", "service": "unit"}


async def test_readyz_is_503_when_a_required_dependency_fails() -> None:
    app = make_app()

    async def ok() -> dict:
        return {"collections": 1}

    async def down() -> None:
        raise ConnectionError("refused")

    app.state.readiness.add("milvus", ok)
    app.state.readiness.add("postgres", down)
    async with client(app) as c:
        response = await c.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["milvus"]["ok"] is True and body["checks"]["milvus"]["collections"] == 1
    assert body["checks"]["postgres"]["ok"] is False and body["checks"]["postgres"]["reason"] == "unreachable"


async def test_readyz_is_200_degraded_when_only_an_optional_dependency_fails() -> None:
    app = make_app()

    async def down() -> None:
        raise ConnectionError("refused")

    app.state.readiness.add("redis", down, required=False)
    async with client(app) as c:
        response = await c.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


async def test_validation_error_names_the_field() -> None:
    async with client(make_app()) as c:
        response = await c.post("/echo", json={"query": "", "k": 0, "extra": 1})
    body = response.json()
    assert response.status_code == 422
    fields = {f["field"] for f in body["error"]["fields"]}
    assert {"body.query", "body.k", "body.extra"} <= fields
    assert body["error"]["code"] == "invalid_input"


async def test_non_json_body_is_a_422_not_a_500() -> None:
    async with client(make_app()) as c:
        response = await c.post("/echo", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"


async def test_body_over_the_limit_is_413() -> None:
    async with client(make_app()) as c:
        response = await c.post("/echo", json={"query": "x" * 5000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_domain_error_maps_to_status_and_json() -> None:
    async with client(make_app()) as c:
        response = await c.get("/items/fm-99999")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "item 'fm-99999' is not in the catalog"


async def test_unexpected_error_is_a_json_500() -> None:
    async with client(make_app()) as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"] == {"code": "internal_error", "message": "internal error", "fields": [],
                                        "request_id": response.headers["x-request-id"]}


async def test_request_id_is_echoed_and_generated() -> None:
    async with client(make_app()) as c:
        given = await c.get("/healthz", headers={"X-Request-ID": "abc"})
        generated = await c.get("/healthz")
    assert given.headers["x-request-id"] == "abc"
    assert len(generated.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_route_template() -> None:
    async with client(make_app()) as c:
        await c.get("/items/fm-1")
        text = (await c.get("/metrics")).text
    assert 'pickwise_http_requests_total{method="GET",route="/items/{item_id}",service="unit",status="404"}' in text
    assert "pickwise_http_request_duration_seconds_bucket" in text


def test_api_key_check_accepts_configured_keys_only() -> None:
    from pickwise_common.errors import Unauthorized

    settings = ServiceSettings(api_keys="k1, k2")
    assert [k.id for k in settings.api_keys] == ["local-1", "local-2"]
    assert require_api_key(settings, "k2").id == "local-2"
    with pytest.raises(Unauthorized, match="missing"):
        require_api_key(settings, None)
    with pytest.raises(Unauthorized, match="invalid"):
        require_api_key(settings, "nope")


async def test_readyz_names_a_reason_code_never_the_exception_text() -> None:
    app = make_app()

    async def down() -> None:
        raise ConnectionError("Error 111 connecting to redis-master.pickwise.svc.cluster.local:6379")

    app.state.readiness.add("redis", down)
    async with client(app) as c:
        response = await c.get("/readyz")
    assert response.json()["checks"]["redis"]["reason"] == "unreachable"
    assert "cluster.local" not in response.text and "6379" not in response.text


@pytest.mark.parametrize("sent", ["x" * 129, "id with spaces", "bad\u202eid", "<script>"],
                         ids=["too-long", "spaces", "bidi", "markup"])
async def test_unusable_request_id_is_replaced_by_a_fresh_one(sent: str) -> None:
    async with client(make_app()) as c:
        response = await c.get("/healthz", headers={"X-Request-ID": sent.encode("utf-8")})
    echoed = response.headers["x-request-id"]
    assert echoed != sent and len(echoed) == 32


async def test_plain_request_id_is_kept() -> None:
    async with client(make_app()) as c:
        response = await c.get("/healthz", headers={"X-Request-ID": "shop-7f3a:42"})
    assert response.headers["x-request-id"] == "shop-7f3a:42"


async def test_a_served_app_freezes_its_startup_heap_and_a_test_app_does_not(monkeypatch) -> None:
    import gc

    from pickwise_common import app as app_module

    gc.unfreeze()
    try:
        async with make_app().router.lifespan_context(FastAPI()):
            assert gc.get_freeze_count() == 0  # the default: many apps in one test process
        monkeypatch.setattr(app_module, "FREEZE_HEAP_AFTER_STARTUP", True)  # what pickwise_common.serve sets
        async with make_app().router.lifespan_context(FastAPI()):
            assert gc.get_freeze_count() > 1000  # modules, schemas, the app: out of every full collection
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("env", "cpus", "expected"), [
    ({}, 8, 1),  # a test stack: one process unless asked
    ({"PICKWISE_GATEWAY_WORKERS": "auto"}, 2, 1), ({"PICKWISE_GATEWAY_WORKERS": "auto"}, 8, 4),
    ({"PICKWISE_GATEWAY_WORKERS": "auto"}, 64, 4), ({"PICKWISE_GATEWAY_WORKERS": "auto"}, 1, 1),
    ({"PICKWISE_GATEWAY_WORKERS": "3"}, 2, 3), ({"PICKWISE_GATEWAY_WORKERS": " Auto "}, 6, 3),
])
def test_gateway_workers_auto_is_half_the_cores_at_most_four(env, cpus, expected) -> None:
    from pickwise_common.launcher.stack import SERVICES

    gateway = next(s for s in SERVICES if s.name == "gateway")
    assert gateway.workers(env, cpu_count=cpus) == expected


def test_pickwise_run_asks_auto_workers_for_the_gateway_and_retriever_only() -> None:
    from pickwise_common.launcher.stack import SERVICES

    assert {s.name for s in SERVICES if s.auto_workers} == {"gateway", "retriever"}


@pytest.mark.parametrize("raw", ["0", "65", "two", ""])
def test_a_bad_workers_setting_names_the_variable(raw) -> None:
    from pickwise_common.launcher.processes import StartupError
    from pickwise_common.launcher.stack import SERVICES

    session = next(s for s in SERVICES if s.name == "session")
    with pytest.raises(StartupError, match="PICKWISE_SESSION_WORKERS"):
        session.workers({"PICKWISE_SESSION_WORKERS": raw})


def test_single_process_services_and_the_monitor() -> None:
    from pickwise_common.launcher.stack import SERVICES

    by_name = {s.name: s for s in SERVICES}
    assert by_name["session"].workers({}, cpu_count=16) == 1
    assert by_name["event-consumer"].workers({}, cpu_count=16) == 1
    assert by_name["monitor"].workers({"PICKWISE_MONITOR_WORKERS": "4"}, cpu_count=16) == 1
