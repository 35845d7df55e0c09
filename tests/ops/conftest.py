"""Shared helpers of the ops tests: the repository root and the tools the tests run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def venv_tool():
    """Path of a console script installed into the running interpreter's environment (``.venv/bin``)."""

    def find(name: str) -> str:
        candidate = Path(sys.executable).parent / name
        found = str(candidate) if candidate.exists() else shutil.which(name)
        assert found, f"{name} is not installed: run `make install`"
        return found

    return find


@pytest.fixture(scope="session")
def run_tool():
    def run(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)

    return run
