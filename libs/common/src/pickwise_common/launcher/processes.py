"""Child processes that cannot outlive the launcher: own session (the terminal's Ctrl-C reaches only the
launcher, which stops them in order), PR_SET_PDEATHSIG (they die if the launcher is killed), logs to files;
and the supervisor that restarts one that exits without being asked to."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1

log = logging.getLogger("pickwise.launcher")


def _die_with_parent(sig: int) -> Callable[[], None]:
    def _preexec() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return _preexec


@dataclass
class ManagedProcess:
    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM
    user: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)
    stopping: bool = field(default=False, init=False)

    def start(self) -> ManagedProcess:
        self.stopping = False
        self.started_at = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                list(self.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True, user=self.user,
                preexec_fn=_die_with_parent(self.stop_signal))
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """Signal, wait, then kill the whole process group. Returns the exit code."""
        self.stopping = True  # an exit from now on is asked for: the supervisor leaves it alone
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        self.reap_group()
        return self.popen.returncode

    def reap_group(self) -> None:
        """Kill anything left in its process group (worker processes, Milvus Lite's server binary, a dead
        postmaster's backends), so a restart finds its port and data directory free."""
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class StartupError(RuntimeError):
    pass


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts of a process that keeps exiting, and when to give up."""

    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_attempts: int = 8  # 0.5 + 1 + 2 + ... + 30 s: about 90 s of a crash loop before giving up
    stable_after_s: float = 60.0  # up this long: the next crash starts the backoff from the beginning

    def delay_s(self, attempt: int) -> float:
        """Wait before restart number ``attempt`` (1-based) of a run of crashes."""
        return float(min(self.initial_delay_s * 2 ** (attempt - 1), self.max_delay_s))


@dataclass(frozen=True)
class Restart:
    name: str
    exit_code: int | None
    attempt: int
    at: float  # time.monotonic() of the restart


@dataclass
class _Watch:
    proc: ManagedProcess
    attempts: int = 0
    due_at: float | None = None
    exit_code: int | None = None


class Supervisor:
    """Watches the processes ``processes()`` returns and restarts one that exited without ``stop()``:
    exponential backoff, "restarted <name> (exit <code>), attempt n" in the launcher's log, and giving up
    after ``policy.max_attempts`` crashes in a row.

    It restarts from its own thread, and PR_SET_PDEATHSIG fires when the *thread* that started a child
    ends: ``hold()`` it, stop the processes, then ``close()`` it."""

    def __init__(self, processes: Callable[[], Mapping[str, ManagedProcess]], policy: RestartPolicy | None = None,
                 *, poll_interval_s: float = 0.2) -> None:
        self._processes = processes
        self.policy = policy or RestartPolicy()
        self._poll_interval_s = poll_interval_s
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()
        self._held = False
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pickwise-supervisor", daemon=True)
        self.restarts: list[Restart] = []
        self.given_up: set[str] = set()

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def hold(self) -> None:
        """No restart from now on; returns once a restart in progress has finished."""
        with self._lock:
            self._held = True

    def close(self) -> None:
        self.hold()
        self._closed.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def check(self) -> None:
        """One pass over the processes (the thread calls this every ``poll_interval_s``)."""
        with self._lock:
            if self._held:
                return
            now = time.monotonic()
            for name, proc in list(self._processes().items()):
                self._check(name, proc, now)

    def _run(self) -> None:
        while not self._closed.wait(self._poll_interval_s):
            try:
                self.check()
            except Exception:  # the supervisor must outlive a surprise; record it and go on watching
                log.exception("supervisor pass failed")

    def _check(self, name: str, proc: ManagedProcess, now: float) -> None:
        watch = self._watches.get(name)
        if watch is None or watch.proc is not proc:  # a new process under this name (e.g. restart_broker)
            watch = self._watches[name] = _Watch(proc)
            self.given_up.discard(name)
        if proc.popen is None or proc.stopping or name in self.given_up:
            return
        code = proc.popen.poll()
        if code is None:
            if watch.attempts and watch.due_at is None and now - proc.started_at >= self.policy.stable_after_s:
                watch.attempts = 0
            return
        if watch.due_at is None:
            if watch.attempts >= self.policy.max_attempts:
                self.given_up.add(name)
                log.error("gave up on %s: exited (exit %s) after %d restarts\n%s", name, code, watch.attempts,
                          proc.log_tail(10))
                return
            proc.reap_group()
            delay_s = self.policy.delay_s(watch.attempts + 1)
            watch.due_at, watch.exit_code = now + delay_s, code
            log.warning("%s exited (exit %s), restarting in %.1f s", name, code, delay_s)
            return
        if now < watch.due_at:
            return
        watch.attempts += 1
        watch.due_at = None
        try:
            proc.start()
        except OSError as exc:  # e.g. the binary vanished: the next pass sees the old exit and backs off more
            log.error("restart of %s failed: %s", name, exc)
            return
        self.restarts.append(Restart(name, watch.exit_code, watch.attempts, time.monotonic()))
        log.warning("restarted %s (exit %s), attempt %d", name, watch.exit_code, watch.attempts)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, what: str,
               process: ManagedProcess | None = None, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and not process.alive():
            raise StartupError(f"{what}: process exited ({process.popen.returncode if process.popen else '?'})\n"
                               f"{process.log_tail()}")
        time.sleep(interval_s)
    tail = process.log_tail() if process else ""
    raise StartupError(f"{what}: not ready after {timeout_s:.0f} s\n{tail}")
