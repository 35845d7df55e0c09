"""Sampling profiles of the stack's Python processes during a bench level (``make profile``): one
``py-spy record --format raw --nonblocking`` per service process (and Milvus Lite's Python launcher) for a
fixed duration, then a flame graph SVG per process (``flamegraph``) and its frames with the most self time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from pickwise_pipeline import flamegraph, stack_cpu

PROFILED = ("gateway", "retriever", "reranker", "generator", "session", "event-consumer", "milvus")


@dataclass
class Recording:
    label: str
    pid: int
    raw_path: Path
    process: subprocess.Popen[bytes]


def py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy (pinned in constraints.txt)")
    return found


def start(gateway_port: int, seconds: float, raw_dir: Path, *, rate_hz: int = 100) -> list[Recording]:
    """One py-spy per Python process of the stack whose label is in ``PROFILED`` (the first of each label)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    recordings: list[Recording] = []
    labels: dict[int, str] = {}
    for proc in stack_cpu.stack_processes(gateway_port):
        try:
            cmdline = proc.cmdline()
            label = stack_cpu.label_of(cmdline, labels.get(proc.ppid()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        labels[proc.pid] = label
        python = bool(cmdline) and "python" in Path(cmdline[0]).name
        if label not in PROFILED or not python or any(r.label == label for r in recordings):
            continue
        raw_path = raw_dir / f"flame-{label}.txt"
        command = [py_spy(), "record", "--pid", str(proc.pid), "--duration", str(int(seconds)), "--rate",
                   str(rate_hz), "--format", "raw", "--nonblocking", "--output", str(raw_path)]
        recordings.append(Recording(label, proc.pid, raw_path,
                                    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    return recordings


def finish(recordings: list[Recording], svg_dir: Path, *, title: str, top: int = 8) -> dict[str, Any]:
    """Wait for the recordings, write ``svg_dir/flame-<label>.svg`` and return each label's top self-time frames."""
    svg_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for rec in recordings:
        _, stderr = rec.process.communicate()
        if rec.process.returncode != 0 or not rec.raw_path.exists():
            out[rec.label] = {"error": stderr.decode(errors="replace").strip()[-300:]}
            continue
        stacks = flamegraph.parse_collapsed(rec.raw_path.read_text(encoding="utf-8"))
        svg_path = svg_dir / f"flame-{rec.label}.svg"
        svg_path.write_text(flamegraph.svg(stacks, f"{rec.label}: {title}"), encoding="utf-8")
        out[rec.label] = {"svg": str(svg_path), "samples": sum(stacks.values()),
                          "top_self": [[frame, round(share, 4)] for frame, share in flamegraph.self_time(stacks, top)]}
    return out
