"""CPU milliseconds per request from the services' process_cpu_seconds_total, before and after a level."""

import pytest

from pickwise_pipeline.bench import Cell, cpu_ms_per_request, default_metrics_urls, parse_cpu_seconds, summarise

pytestmark = pytest.mark.unit

EXPOSITION = """# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_open_fds 31.0
"""


def test_cpu_seconds_read_from_the_exposition() -> None:
    assert parse_cpu_seconds(EXPOSITION) == 12.5
    assert parse_cpu_seconds("pickwise_http_requests_total 3.0\n") is None


def test_cpu_ms_per_request_of_processes_seen_twice() -> None:
    before = {"gateway": 10.0, "retriever": 20.0, "bench-client": 1.0}
    after = {"gateway": 10.5, "retriever": 21.5, "bench-client": 1.2, "reranker": 3.0}
    assert cpu_ms_per_request(before, after, 100) == {"gateway": 5.0, "retriever": 15.0, "bench-client": 2.0}
    assert cpu_ms_per_request(before, after, 0) == {}


def test_summary_carries_cpu_only_when_measured() -> None:
    cell = Cell("search", 10, latencies_ms=[5.0])
    assert "cpu_ms_per_request" not in summarise(cell)
    cell.cpu_ms_per_request = {"gateway": 4.2}
    assert summarise(cell)["cpu_ms_per_request"] == {"gateway": 4.2}


def test_service_urls_from_the_launcher_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICKWISE_EVENT_CONSUMER_URL", "http://127.0.0.1:18005")
    monkeypatch.delenv("PICKWISE_RETRIEVER_URL", raising=False)
    urls = default_metrics_urls("http://127.0.0.1:18000")
    assert urls["gateway"] == "http://127.0.0.1:18000"
    assert urls["event-consumer"] == "http://127.0.0.1:18005"
    assert urls["retriever"] == "http://127.0.0.1:8001"
