"""Run one service under uvicorn: ``python -m pickwise_common.serve pickwise_retriever.app:create_app``.

Host and port come from ``PICKWISE_HOST`` / ``PICKWISE_PORT``; SIGTERM drains in-flight requests for up
to ``PICKWISE_SHUTDOWN_GRACE_S`` before the lifespan closes connections (and commits consumer offsets).
``PICKWISE_WORKERS`` > 1 runs that many worker processes on the one port (decision 0910): uvicorn's
supervisor restarts a worker that dies, and ``/metrics`` sums the workers through a Prometheus multiprocess
directory made here (or ``PROMETHEUS_MULTIPROC_DIR`` when set), emptied at start."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn

from pickwise_common import app as app_module
from pickwise_common.metrics import MULTIPROC_ENV
from pickwise_common.settings import ServiceSettings


def multiprocess_dir(service: str) -> Path:
    """An empty directory for the workers' metric files: the configured one emptied (files of a previous
    run's workers would be summed in), else a new temporary one."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix=f"pickwise-{service}-metrics-"))


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1 or ":" not in args[0]:
        sys.exit("usage: python -m pickwise_common.serve package.module:create_app")
    settings = ServiceSettings()
    # inherited by worker processes, which import the app afresh
    os.environ[app_module.FREEZE_HEAP_ENV] = "1"
    app_module.FREEZE_HEAP_AFTER_STARTUP = True
    temporary: Path | None = None
    if settings.workers > 1:
        # before any worker starts: each worker's metrics then live in files the exposition sums
        configured = bool(os.environ.get(MULTIPROC_ENV))
        path = multiprocess_dir(settings.service_name)
        os.environ[MULTIPROC_ENV] = str(path)
        temporary = None if configured else path
    try:
        uvicorn.run(args[0], factory=True, host=settings.host, port=settings.port, log_config=None,
                    access_log=False, timeout_graceful_shutdown=int(settings.shutdown_grace_s),
                    loop="uvloop", http="httptools", lifespan="on", workers=settings.workers)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    main()
