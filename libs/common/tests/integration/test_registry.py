"""The model registry against the real MLflow server of the embedded infrastructure (Postgres backend)."""

import uuid
from pathlib import Path

import asyncpg
import pytest

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.launcher.processes import free_port
from pickwise_common.registry import FILES_SHA256_TAG, ModelEvent, Registry, RegistrySettings, dir_sha256

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(infra, tmp_path: Path) -> Registry:
    return Registry(RegistrySettings(mlflow_tracking_uri=infra.config.mlflow_uri,
                                     model_cache_dir=tmp_path / "cache"))


def _model_dir(root: Path, content: str) -> Path:
    root.mkdir(parents=True)
    (root / "ranker-v1.txt").write_text(content)
    (root / "ranker-v1.json").write_text('{"features": ["bm25"]}')
    return root


def test_register_alias_fetch_round_trip(registry: Registry, tmp_path: Path) -> None:
    name = f"test-model-{uuid.uuid4().hex[:8]}"
    files = _model_dir(tmp_path / "files", "tree 1")
    run_id = registry.log_run("test-registry", params={"trees": 10}, metrics={"ndcg_at_10": 0.61},
                              artifact_dir=files, tags={"source": "test"})
    version = registry.register(name, run_id=run_id, tags={FILES_SHA256_TAG: dir_sha256(files)})

    assert registry.fetch(name, "champion") is None
    registry.set_alias(name, "champion", version)
    fetched = registry.fetch(name, "champion")

    assert fetched is not None
    assert (fetched.name, fetched.version, fetched.alias) == (name, version, "champion")
    assert (fetched.path / "ranker-v1.txt").read_text() == "tree 1"
    assert (fetched.path / "ranker-v1.json").exists()
    assert registry.version_metric(name, version, "ndcg_at_10") == pytest.approx(0.61)
    assert registry.find_version(name, FILES_SHA256_TAG, dir_sha256(files)) == version
    # the listing (pickwise-pipeline registry list) shows the alias too
    assert [(v.version, v.aliases) for v in registry.versions(name)] == [(version, ("champion",))]


def test_fetch_downloads_a_version_once(registry: Registry, tmp_path: Path) -> None:
    name = f"test-model-{uuid.uuid4().hex[:8]}"
    version = registry.register(name, artifact_dir=_model_dir(tmp_path / "files", "tree"))
    registry.set_alias(name, "challenger", version)
    first = registry.fetch(name, "challenger")
    assert first is not None
    (first.path / "ranker-v1.txt").write_text("changed locally")  # a second fetch must not download again

    second = registry.fetch(name, "challenger")

    assert second is not None and second.path == first.path
    assert (second.path / "ranker-v1.txt").read_text() == "changed locally"


def test_delete_alias_leaves_no_alias(registry: Registry, tmp_path: Path) -> None:
    name = f"test-model-{uuid.uuid4().hex[:8]}"
    version = registry.register(name, artifact_dir=_model_dir(tmp_path / "files", "tree"))
    registry.set_alias(name, "challenger", version)

    assert registry.delete_alias(name, "challenger") is True
    assert registry.alias_version(name, "challenger") is None
    assert registry.delete_alias(name, "challenger") is False


def test_tag_is_kept_on_the_version(registry: Registry, tmp_path: Path) -> None:
    name = f"test-model-{uuid.uuid4().hex[:8]}"
    version = registry.register(name, artifact_dir=_model_dir(tmp_path / "files", "tree"))

    registry.tag(name, version, "gate", "failed")

    assert registry.version(name, version).tags["gate"] == "failed"


def test_unknown_model_has_no_alias(registry: Registry) -> None:
    assert registry.alias_version(f"never-registered-{uuid.uuid4().hex[:8]}", "champion") is None


def test_unreachable_registry_fails_as_dependency_unavailable(tmp_path: Path) -> None:
    down = Registry(RegistrySettings(mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}",
                                     model_cache_dir=tmp_path, registry_max_retries=0))
    with pytest.raises(DependencyUnavailable):
        down.alias_version("pickwise-ranker", "champion")


async def test_record_writes_a_model_events_row(infra, registry: Registry) -> None:
    name = f"test-model-{uuid.uuid4().hex[:8]}"
    row_id = await registry.record(ModelEvent(name, "4", "rejected", "ndcg below champion", {"gain": -0.02}),
                                   infra.config.postgres_url)
    conn = await asyncpg.connect(infra.config.postgres_url)
    try:
        row = await conn.fetchrow("SELECT model_name, version, action, reason, detail FROM model_events WHERE id=$1",
                                  row_id)
    finally:
        await conn.close()
    assert (row["model_name"], row["version"], row["action"]) == (name, "4", "rejected")
    assert row["reason"] == "ndcg below champion"
    assert '"gain": -0.02' in row["detail"]


def test_ensure_champion_registers_the_same_files_once(registry: Registry, tmp_path: Path) -> None:
    name = f"test-model-{uuid.uuid4().hex[:8]}"
    folder = _model_dir(tmp_path / "shipped", "shipped tree")
    files = sorted(folder.iterdir())

    first, changed = registry.ensure_champion(name, files, reason="shipped with the repository")
    again, changed_again = registry.ensure_champion(name, files, reason="shipped with the repository")
    registry.delete_alias(name, "champion")
    restored, restored_changed = registry.ensure_champion(name, files, reason="shipped with the repository")

    assert (changed, changed_again, restored_changed) == (True, False, True)
    assert first == again == restored
    assert [v.version for v in registry.versions(name)] == [first]


def test_bootstrap_registry_gives_the_ranker_a_champion_and_is_idempotent(infra, registry: Registry) -> None:
    from pickwise_common.launcher.stack import bootstrap_registry
    from pickwise_common.registry import RANKER_MODEL

    env = infra.config.env()
    first = bootstrap_registry(env)
    versions = registry.versions(RANKER_MODEL)
    second = bootstrap_registry(env)

    assert first is not None and first == second == registry.alias_version(RANKER_MODEL, "champion")
    assert registry.versions(RANKER_MODEL) == versions
    champion = registry.fetch(RANKER_MODEL, "champion")
    assert champion is not None and list(champion.path.glob("ranker-v*.txt"))


def test_create_database_command_is_idempotent(infra) -> None:
    from pickwise_common.registry import main

    name = f"mlflow_{uuid.uuid4().hex[:8]}"
    assert main(["--admin-url", infra.config.postgres_url, "--database", name, "create-database"]) == 0
    assert main(["--admin-url", infra.config.postgres_url, "--database", name, "create-database"]) == 0

    async def exists() -> bool:
        conn = await asyncpg.connect(infra.config.postgres_url)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()

    import asyncio

    assert asyncio.run(exists())
