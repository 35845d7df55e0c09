"""Run one service under uvicorn: ``python -m pickwise_common.serve pickwise_retriever.app:create_app``.

Host and port come from ``PICKWISE_HOST`` / ``PICKWISE_PORT``; SIGTERM drains in-flight requests for up
to ``PICKWISE_SHUTDOWN_GRACE_S`` before the lifespan closes connections (and commits consumer offsets)."""

from __future__ import annotations

import sys

import uvicorn

from pickwise_common import app as app_module
from pickwise_common.settings import ServiceSettings


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1 or ":" not in args[0]:
        sys.exit("usage: python -m pickwise_common.serve package.module:create_app")
    settings = ServiceSettings()
    app_module.FREEZE_HEAP_AFTER_STARTUP = True
    uvicorn.run(args[0], factory=True, host=settings.host, port=settings.port, log_config=None,
                access_log=False, timeout_graceful_shutdown=int(settings.shutdown_grace_s),
                loop="uvloop", http="httptools", lifespan="on")


if __name__ == "__main__":
    main()
