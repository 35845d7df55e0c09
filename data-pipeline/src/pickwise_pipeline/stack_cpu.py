"""CPU time of every process of a running Pickwise stack, for CPU milliseconds per request in the benchmarks.

The stack is found from the gateway's port: the process listening on it, its parent (``pickwise run`` or a
test session) and all that parent's descendants — the six services, Milvus Lite (and its server binary),
Redis, Postgres (postmaster and one backend per connection) and the broker. Each process gets a label from
its command line; a process whose command line says nothing (a forked helper) takes its parent's label.
Accounting is a pure function over two samples, so processes that start during the run (a new Postgres
backend) count from zero and a reused pid is told apart by its start time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

SERVE_MODULE = "pickwise_common.serve"


@dataclass(frozen=True)
class ProcessSample:
    label: str
    cpu_s: float  # user + system seconds so far
    started_at: float  # psutil create_time: tells a reused pid apart


def label_of(cmdline: list[str], parent_label: str | None = None) -> str:
    """The stack role of a process from its command line (``gateway``, ``milvus``, ``postgres`` ...)."""
    if SERVE_MODULE in cmdline:
        factory = cmdline[cmdline.index(SERVE_MODULE) + 1] if cmdline.index(SERVE_MODULE) + 1 < len(cmdline) else ""
        return factory.split(".", 1)[0].removeprefix("pickwise_").replace("_", "-") or "service"
    joined = " ".join(cmdline)
    exe = os.path.basename(cmdline[0]) if cmdline else ""
    if "milvus" in joined:
        return "milvus"
    if "mlflow" in cmdline:  # python -m mlflow server (the model registry the services poll)
        return "mlflow"
    if "redis-server" in exe or "redis" in exe:
        return "redis"
    if exe.startswith("postgres") or joined.startswith("postgres:"):
        return "postgres"
    if len(cmdline) > 1 and cmdline[1] == "broker":
        return "broker"
    if "run" in cmdline and any(os.path.basename(arg) == "pickwise" for arg in cmdline[:2]):
        return "launcher"
    return parent_label or exe or "unknown"


def listening_pids(port: int) -> set[int]:
    """The pids listening on 127.0.0.1/0.0.0.0 ``port`` (a server with worker processes: its supervisor and
    each worker hold the socket); empty when none of this user's processes does."""
    return {conn.pid for conn in psutil.net_connections(kind="tcp")
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid}


def stack_processes(gateway_port: int) -> list[psutil.Process]:
    """The processes of the stack whose gateway listens on ``gateway_port`` (empty when not found)."""
    pids = listening_pids(gateway_port)
    if not pids:
        return []
    gateway = psutil.Process(min(pids))
    # a worker process (its command line is multiprocessing's) up to the server that spawned it
    while SERVE_MODULE not in _cmdline(gateway) and (parent := gateway.parent()) is not None \
            and (parent.pid in pids or SERVE_MODULE in _cmdline(parent)):
        gateway = parent
    root = gateway.parent()
    if root is None or root.pid == 1:
        return [gateway, *gateway.children(recursive=True)]
    return [root, *root.children(recursive=True)]


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def sample(processes: list[psutil.Process]) -> dict[int, ProcessSample]:
    """One CPU sample of each process still alive, labelled (parents before children, as listed)."""
    samples: dict[int, ProcessSample] = {}
    for proc in processes:
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                parent = samples.get(proc.ppid())
                label = label_of(proc.cmdline(), parent.label if parent else None)
                samples[proc.pid] = ProcessSample(label, times.user + times.system, proc.create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return samples


def sample_stack(gateway_port: int) -> dict[int, ProcessSample]:
    """A fresh sample of the stack (processes re-listed, so backends started since are included)."""
    return sample(stack_processes(gateway_port))


def cpu_ms_by_label(before: dict[int, ProcessSample], after: dict[int, ProcessSample],
                    requests: int) -> dict[str, float]:
    """CPU milliseconds per request summed by label over the processes of ``after``: a process absent from
    ``before`` (or a pid reused since) counts from zero; one gone by ``after`` is not counted (its last CPU is
    lost). Labels in descending CPU order, then ``stack total``."""
    if requests <= 0:
        return {}
    by_label: dict[str, float] = {}
    for pid, now in after.items():
        then = before.get(pid)
        start = then.cpu_s if then is not None and then.started_at == now.started_at else 0.0
        by_label[now.label] = by_label.get(now.label, 0.0) + max(0.0, now.cpu_s - start)
    ordered = sorted(by_label.items(), key=lambda kv: (-kv[1], kv[0]))
    out = {label: round(seconds * 1000 / requests, 2) for label, seconds in ordered}
    if out:
        out["stack total"] = round(sum(by_label.values()) * 1000 / requests, 2)
    return out
