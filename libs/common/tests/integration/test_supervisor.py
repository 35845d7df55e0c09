"""The launcher's supervisor over real child processes: a killed one comes back with backoff and says so,
one that keeps crashing is given up, one stopped on purpose stays stopped."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pickwise_common.launcher.processes import ManagedProcess, RestartPolicy, Supervisor, wait_until

pytestmark = pytest.mark.integration

FAST = RestartPolicy(initial_delay_s=0.05, max_delay_s=0.2, max_attempts=3, stable_after_s=60.0)


def _sleeper(tmp_path: Path, name: str = "sleeper") -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-c", "import time; time.sleep(600)"], tmp_path / f"{name}.log")


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[dict[str, ManagedProcess], Supervisor]]:
    processes: dict[str, ManagedProcess] = {}
    supervisor = Supervisor(lambda: processes, FAST, poll_interval_s=0.02).start()
    try:
        yield processes, supervisor
    finally:
        supervisor.hold()
        for proc in processes.values():
            proc.stop(timeout_s=2)
        supervisor.close()


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(initial_delay_s=0.5, max_delay_s=30.0)

    assert [policy.delay_s(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_killed_process_is_restarted_and_logged(watched: tuple[dict[str, ManagedProcess], Supervisor],
                                                tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    processes, supervisor = watched
    proc = processes["sleeper"] = _sleeper(tmp_path).start()
    first_pid = proc.pid
    caplog.set_level(logging.WARNING, logger="pickwise.launcher")

    os.kill(first_pid or 0, signal.SIGKILL)
    wait_until(lambda: bool(supervisor.restarts) and proc.alive(), timeout_s=30, what="restart")

    assert proc.pid != first_pid
    assert [(r.name, r.exit_code, r.attempt) for r in supervisor.restarts] == [("sleeper", -9, 1)]
    assert "restarted sleeper (exit -9), attempt 1" in caplog.text


def test_a_process_that_keeps_crashing_is_given_up(watched: tuple[dict[str, ManagedProcess], Supervisor],
                                                   tmp_path: Path) -> None:
    processes, supervisor = watched
    processes["crasher"] = ManagedProcess("crasher", [sys.executable, "-c", "raise SystemExit(3)"],
                                          tmp_path / "crasher.log").start()

    wait_until(lambda: "crasher" in supervisor.given_up, timeout_s=30, what="giving up")

    assert [(r.exit_code, r.attempt) for r in supervisor.restarts] == [(3, 1), (3, 2), (3, 3)]
    assert not processes["crasher"].alive()


def test_stopped_process_stays_stopped(watched: tuple[dict[str, ManagedProcess], Supervisor],
                                       tmp_path: Path) -> None:
    processes, supervisor = watched
    proc = processes["sleeper"] = _sleeper(tmp_path).start()

    proc.stop(timeout_s=2)
    supervisor.check()
    supervisor.check()

    assert not proc.alive()
    assert supervisor.restarts == []
