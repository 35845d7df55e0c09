"""The reranker following the real MLflow registry of the test infrastructure (decision 1003b): two tiny LightGBM
rankers registered as champion and challenger, each request scored by its alias's version, the champion
answering once the challenger alias is deleted (picked up by the service's own poll), /readyz and the admin
reload reporting both aliases."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pickwise_common.registry import Registry, RegistrySettings
from pickwise_reranker.app import create_app
from pickwise_reranker.config import RerankerSettings

pytestmark = pytest.mark.integration

ADMIN = "reranker-admin-key"
WAIT_S = 60.0


@pytest.fixture
def registry(infra, tmp_path) -> Registry:
    return Registry(RegistrySettings(mlflow_tracking_uri=infra.config.mlflow_uri,
                                     model_cache_dir=tmp_path / "registry-writer-cache"))


@pytest.fixture
def model_name() -> str:
    # a name of its own: the session's registry is shared with the stack, whose reranker follows pickwise-ranker
    return f"pickwise-ranker-it-{uuid.uuid4().hex[:8]}"


def settings(infra, tmp_path, model_name: str, **overrides: Any) -> RerankerSettings:
    values: dict[str, Any] = {
        "redis_url": infra.config.redis_url, "ranker_model_dir": tmp_path / "no-files", "reranker_model": "none",
        "admin_key": ADMIN, "log_json": False, "mlflow_tracking_uri": infra.config.mlflow_uri,
        "model_cache_dir": tmp_path / "service-cache", "ranker_registered_name": model_name,
        "registry_poll_s": 0.5}
    return RerankerSettings(**(values | overrides))


def body(make_candidate, alias: str) -> dict[str, Any]:
    cands = [make_candidate(f"c{i}", fused=1 - i / 10, price=8_000 + 2_000 * i) for i in range(6)]
    return {"query": "samsung under 15k", "candidates": [c.model_dump(mode="json") for c in cands], "k": 6,
            "parsed": {"price_max_inr": 15_000}, "ranker_alias": alias}


def ids(response: dict[str, Any]) -> list[str]:
    return [i["item"]["item_id"] for i in response["items"]]


def register(registry: Registry, name: str, directory, alias: str) -> str:
    version = registry.register(name, artifact_dir=directory, tags={"gate": "passed"})
    registry.set_alias(name, alias, version)
    return version


def test_each_alias_is_served_by_its_registered_version_and_a_deleted_challenger_falls_back(
        infra, registry, model_name, tmp_path, ranker_writer, make_candidate, no_blocking_io):
    ranker_writer(tmp_path / "v-champion", "20260101T000000")
    ranker_writer(tmp_path / "v-challenger", "20260202T000000", reverse=True)
    champion = register(registry, model_name, tmp_path / "v-champion", "champion")
    challenger = register(registry, model_name, tmp_path / "v-challenger", "challenger")

    with TestClient(create_app(settings(infra, tmp_path, model_name))) as client:
        by_challenger = client.post("/v1/rerank", json=body(make_candidate, "challenger")).json()
        by_champion = client.post("/v1/rerank", json=body(make_candidate, "champion")).json()
        ready = client.get("/readyz").json()["checks"]["models"]["rankers"]

        registry.delete_alias(model_name, "challenger")
        deadline = time.monotonic() + WAIT_S
        fallback = client.post("/v1/rerank", json=body(make_candidate, "challenger")).json()
        while fallback["ranker_version"] != f"{model_name}/{champion}@champion" and time.monotonic() < deadline:
            time.sleep(0.2)
            fallback = client.post("/v1/rerank", json=body(make_candidate, "challenger")).json()
        after = client.get("/readyz").json()["checks"]["models"]["rankers"]
        reloaded = client.post("/v1/admin/reload", headers={"X-Admin-Key": ADMIN}).json()

    assert by_challenger["ranker_version"] == f"{model_name}/{challenger}@challenger"
    assert by_challenger["ranker"] == "lightgbm-lambdarank:20260202T000000"
    assert by_champion["ranker_version"] == f"{model_name}/{champion}@champion"
    assert by_champion["ranker"] == "lightgbm-lambdarank:20260101T000000"
    # the reversed challenger orders the same candidates differently: each alias really scored
    assert ids(by_challenger) != ids(by_champion)
    assert ready["champion"]["version"] == f"{model_name}/{champion}@champion"
    assert ready["challenger"]["version"] == f"{model_name}/{challenger}@challenger"
    assert ready["champion"]["source"] == "registry" and ready["champion"]["gate"] == "passed"

    assert fallback["ranker_version"] == f"{model_name}/{champion}@champion"
    assert fallback["ranker"] == "lightgbm-lambdarank:20260101T000000"
    assert after["challenger"] is None
    assert reloaded["rankers"]["champion"]["version"] == f"{model_name}/{champion}@champion"
    assert reloaded["rankers"]["challenger"] is None


def test_without_a_registered_champion_the_newest_file_serves(infra, model_name, tmp_path, ranker_writer,
                                                              make_candidate):
    ranker_writer(tmp_path / "no-files", "20250505T000000")
    with TestClient(create_app(settings(infra, tmp_path, model_name))) as client:
        response = client.post("/v1/rerank", json=body(make_candidate, "challenger")).json()
    assert response["ranker_version"] == "file:20250505T000000@champion"
    assert response["ranker"] == "lightgbm-lambdarank:20250505T000000"


def test_an_unreachable_registry_serves_the_newest_file_and_stays_up(infra, model_name, tmp_path, ranker_writer,
                                                                     make_candidate):
    from pickwise_common.launcher.processes import free_port

    ranker_writer(tmp_path / "no-files", "20250505T000000")
    config = settings(infra, tmp_path, model_name, mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}",
                      registry_max_retries=0, registry_timeout_s=1.0)
    with TestClient(create_app(config)) as client:
        response = client.post("/v1/rerank", json=body(make_candidate, "champion"))
        ready = client.get("/readyz").json()["checks"]["models"]["rankers"]
    assert response.status_code == 200
    assert response.json()["ranker_version"] == "file:20250505T000000@champion"
    assert "registry" in ready["errors"]["champion"]
