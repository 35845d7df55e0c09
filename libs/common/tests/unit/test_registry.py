"""The registry's pure parts: settings, labels, digests, event validation (no server)."""

from pathlib import Path

import pytest

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.registry import (
    LocalModel,
    ModelEvent,
    Registry,
    RegistrySettings,
    cf_model_name,
    dir_sha256,
    files_sha256,
)

pytestmark = pytest.mark.unit


def test_tracking_uri_none_turns_the_registry_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PICKWISE_MLFLOW_TRACKING_URI", "none")
    registry = Registry(RegistrySettings())
    assert not registry.enabled
    with pytest.raises(DependencyUnavailable):
        registry.alias_version("pickwise-ranker", "champion")


def test_default_tracking_uri_is_the_local_server() -> None:
    settings = RegistrySettings()
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.model_cache_dir.parts[-2:] == (".pickwise", "model-cache")


def test_local_model_label_names_version_and_alias() -> None:
    assert LocalModel("pickwise-ranker", "3", "champion", Path("/m")).label == "pickwise-ranker/3@champion"
    assert LocalModel("pickwise-cf-retail", "2", None, Path("/m")).label == "pickwise-cf-retail/2"


def test_cf_model_name_carries_the_catalog() -> None:
    assert cf_model_name("retail") == "pickwise-cf-retail"


def test_same_files_give_the_same_digest_wherever_they_live(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "ranker-v1.txt").write_text("tree")
        (tmp_path / folder / "ranker-v1.json").write_text("{}")
    assert dir_sha256(tmp_path / "a") == dir_sha256(tmp_path / "b")
    (tmp_path / "b" / "ranker-v1.txt").write_text("another tree")
    assert dir_sha256(tmp_path / "a") != dir_sha256(tmp_path / "b")


def test_digest_depends_on_file_names(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("same")
    (tmp_path / "y.txt").write_text("same")
    assert files_sha256([tmp_path / "x.txt"]) != files_sha256([tmp_path / "y.txt"])


def test_model_event_refuses_an_unknown_action() -> None:
    with pytest.raises(ValueError, match="action"):
        ModelEvent("pickwise-ranker", "1", "deployed", "why")


def test_backend_store_uri_swaps_the_database_and_names_psycopg2() -> None:
    from pickwise_common.registry import backend_store_uri

    url = "postgresql://pickwise:s3cret@postgres:5432/pickwise?sslmode=require"
    assert backend_store_uri(url, "mlflow") == "postgresql+psycopg2://pickwise:s3cret@postgres:5432/mlflow?sslmode=require"


def test_backend_store_uri_refuses_another_database_kind() -> None:
    from pickwise_common.registry import backend_store_uri

    with pytest.raises(ValueError, match="postgresql"):
        backend_store_uri("mysql://u@h/db", "mlflow")
