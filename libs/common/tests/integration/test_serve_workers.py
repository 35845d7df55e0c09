"""``PICKWISE_WORKERS``: one service as several worker processes on one port, served by the real entry point
(``python -m pickwise_common.serve``), with ``/metrics`` summing the workers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from pickwise_common.launcher.processes import free_port

pytestmark = pytest.mark.integration

PROBE_APP = textwrap.dedent('''
    import os

    from pickwise_common.app import service_app
    from pickwise_common.settings import ServiceSettings


    def create_app():
        app = service_app("probe", ServiceSettings())

        @app.get("/v1/pid")
        async def pid() -> dict[str, int]:
            return {"pid": os.getpid()}

        return app
''')


def _requests_total(text: str, route: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("pickwise_http_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def served(tmp_path):
    (tmp_path / "probe_app.py").write_text(PROBE_APP)
    port = free_port()
    env = dict(os.environ) | {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
                              "PICKWISE_PORT": str(port), "PICKWISE_WORKERS": "2",
                              "PICKWISE_SERVICE_NAME": "probe", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    (tmp_path / "prom").mkdir()
    (tmp_path / "prom" / "counter_999999.db").write_bytes(b"stale")  # a previous run's file: emptied at start
    proc = subprocess.Popen([sys.executable, "-m", "pickwise_common.serve", "probe_app:create_app"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "the server exited at start"
        assert time.monotonic() < deadline, "the server did not answer within 60 s"
        time.sleep(0.2)
    try:
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_several_workers_share_the_port_and_metrics_sum_them(served) -> None:
    url, _ = served
    pids: set[int] = set()
    sent = 0
    deadline = time.monotonic() + 60
    # a new connection per request: the kernel hands connections to whichever worker accepts first
    while len(pids) < 2 or sent < 40:
        assert time.monotonic() < deadline, f"only workers {pids} answered {sent} requests"
        pids.add(httpx.get(url + "/v1/pid", timeout=5).json()["pid"])
        sent += 1
    assert len(pids) == 2
    # whichever worker answers the scrape, it reports every worker's requests
    for _ in range(4):
        assert _requests_total(httpx.get(url + "/metrics", timeout=5).text, "/v1/pid") == sent


def test_a_killed_worker_is_replaced(served) -> None:
    url, _ = served
    pids = {httpx.get(url + "/v1/pid", timeout=5).json()["pid"] for _ in range(30)}
    victim = min(pids)
    os.kill(victim, 9)
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while not (seen - pids):
        assert time.monotonic() < deadline, "no new worker answered within 60 s"
        try:
            seen.add(httpx.get(url + "/v1/pid", timeout=5).json()["pid"])
        except httpx.HTTPError:
            time.sleep(0.2)
    assert victim not in seen


def test_metric_names_are_the_single_process_names(served) -> None:
    url, _ = served
    text = httpx.get(url + "/metrics", timeout=5).text
    assert re.search(r"^pickwise_http_request_duration_seconds_bucket\{", text, re.M)


def test_the_bench_counts_every_worker_of_the_gateway(served) -> None:
    """``make bench`` finds the stack from the gateway's port: with workers it must count all of them."""
    from pickwise_pipeline import stack_cpu

    url, proc = served
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while len(workers) < 2:
        assert time.monotonic() < deadline
        workers.add(httpx.get(url + "/v1/pid", timeout=5).json()["pid"])
    seen = {p.pid for p in stack_cpu.stack_processes(int(url.rsplit(":", 1)[1]))}
    # the server, its workers and what started it (here this test process; in `make run` the launcher, whose
    # other children are the rest of the stack)
    assert {os.getpid(), proc.pid, *workers} <= seen
