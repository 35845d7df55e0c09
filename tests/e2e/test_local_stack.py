"""The local stack as `make run` starts it: every service ready with per-dependency detail, and the
`pickwise run` command leaving no process behind on SIGTERM."""

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from pickwise_common.launcher.processes import free_port
from pickwise_common.launcher.stack import SERVICES

pytestmark = pytest.mark.e2e

EXPECTED_DEPENDENCIES = {
    "gateway": {"kafka"},
    "retriever": {"postgres", "redis", "milvus"},
    "reranker": {"redis"},
    "generator": set(),
    "session": {"postgres", "redis"},
    "event-consumer": {"postgres", "redis", "kafka"},
    "monitor": {"postgres", "registry"},
}


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_every_service_is_ready_with_dependency_detail(stack, service: str) -> None:
    response = httpx.get(stack.url(service) + "/readyz", timeout=5)
    body = response.json()
    assert response.status_code == 200
    assert body["service"] == service
    assert EXPECTED_DEPENDENCIES[service] <= set(body["checks"])
    assert all(check["ok"] for check in body["checks"].values()), body


@pytest.mark.parametrize("service", [s.name for s in SERVICES])
def test_every_service_exports_metrics(stack, service: str) -> None:
    httpx.get(stack.url(service) + "/healthz", timeout=5)
    text = httpx.get(stack.url(service) + "/metrics", timeout=5).text
    assert f'pickwise_service_info{{service="{service}"' in text


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def test_pickwise_run_stops_everything_on_sigterm(tmp_path) -> None:
    env = dict(os.environ)
    ports = {f"PICKWISE_{s.name.upper().replace('-', '_')}_PORT": str(free_port()) for s in SERVICES}
    infra_ports = {k: str(free_port()) for k in ("PICKWISE_BROKER_PORT", "PICKWISE_REDIS_PORT",
                                                 "PICKWISE_POSTGRES_PORT", "PICKWISE_MILVUS_PORT")}
    env |= ports | infra_ports | {"PICKWISE_STACK_DIR": str(tmp_path / "stack")}
    launcher = subprocess.Popen([sys.executable, "-m", "pickwise_common.launcher.cli", "run", "--no-catalog"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = launcher.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Ctrl-C stops everything" in line:
                break
        assert any("Pickwise is running" in line for line in output), "".join(output)
        gateway = f"http://127.0.0.1:{ports['PICKWISE_GATEWAY_PORT']}"
        assert httpx.get(gateway + "/readyz", timeout=5).status_code == 200
        children = _descendants(launcher.pid)
        assert len(children) >= 10  # 4 infrastructure processes + 6 services (+ their workers)
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(60)
    time.sleep(0.5)
    alive = [pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert launcher.returncode == 0
