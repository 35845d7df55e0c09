"""pytest plugin (loaded from the root pyproject): the real infrastructure and the whole stack, started
once per test session by the same launcher code ``make run`` uses, on free ports and in a temp dir, so
the suite runs beside a developer's ``make run`` stack."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pickwise_common.launcher.infra import Infra, InfraConfig, start_infra
from pickwise_common.launcher.processes import free_port
from pickwise_common.launcher.stack import DEFAULT_API_KEY, Stack, StackConfig, prepare_infra, start_stack

ADMIN_KEY = "test-admin-key"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """Broker, Redis, Postgres, Milvus Lite and MLflow as real processes; topics created, schema migrated."""
    data_dir = tmp_path_factory.mktemp("pickwise-infra")
    cfg = InfraConfig(data_dir, broker_port=free_port(), redis_port=free_port(), postgres_port=free_port(),
                      milvus_port=free_port(), mlflow_port=free_port())
    started = start_infra(cfg)
    try:
        import asyncio

        asyncio.run(prepare_infra(cfg))
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The six services on free ports against the session's infrastructure, catalog loaded."""
    data_dir: Path = tmp_path_factory.mktemp("pickwise-stack")
    config = StackConfig.on_free_ports(data_dir, load_catalog=True)
    config.infra = infra.config
    # the retriever serves the CF models a test saves under <stack data>/models (tests/e2e/test_cf_feed.py),
    # not the developer's trained ones
    config.extra_env = {"PICKWISE_API_KEYS": DEFAULT_API_KEY, "PICKWISE_ADMIN_KEY": ADMIN_KEY,
                        "PICKWISE_LOG_LEVEL": "INFO", "PICKWISE_CF_MODELS_DIR": str(data_dir / "models")}
    started = start_stack(config, infra=infra)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def api_key() -> str:
    return DEFAULT_API_KEY


@pytest.fixture
def no_blocking_io() -> Iterator[None]:
    """Fail a test when anything blocks the event loop (file or socket I/O, sleeps) inside the service."""
    from blockbuster import blockbuster_ctx

    with blockbuster_ctx() as bb:
        # redis-py reads its package metadata once when it opens its first connection (library code); once mlflow
        # was imported in the process, the importlib_metadata backport's finder answers that lookup
        for func in ("os.stat", "os.listdir", "os.scandir", "io.BufferedReader.read", "io.TextIOWrapper.read"):
            if func in bb.functions:
                for module in ("importlib/metadata/__init__.py", "importlib_metadata/__init__.py"):
                    bb.functions[func].can_block_in(module, {"mtime", "search", "read_text", "lookup", "__init__"})
        yield
