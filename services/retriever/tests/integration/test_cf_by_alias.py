"""CF models followed through the real MLflow registry of the test infrastructure (decision 1003b): a ``cf-v*``
directory registered as a catalog's champion is downloaded into the cache and served under its registered
version, a moved alias swaps it, a deleted one falls back to the newest directory. The catalog is a name of this
test's own, so the stack's retriever (which follows pickwise-cf-flipkart/retail) is not disturbed."""

from __future__ import annotations

import uuid

import pytest

from pickwise_common.registry import Registry, RegistrySettings
from pickwise_retriever.cf_serving import CfModels, cf_model_name

pytestmark = pytest.mark.integration


def test_a_registered_cf_champion_is_fetched_served_swapped_and_dropped(infra, tmp_path, save_tiny_cf_model):
    catalog = f"it{uuid.uuid4().hex[:8]}"
    name = cf_model_name(catalog)
    writer = Registry(RegistrySettings(mlflow_tracking_uri=infra.config.mlflow_uri,
                                       model_cache_dir=tmp_path / "writer-cache"))
    first = writer.register(name, artifact_dir=save_tiny_cf_model("cf-v20261101T000000Z", tmp_path / "a"))
    second = writer.register(name, artifact_dir=save_tiny_cf_model("cf-v20261102T000000Z", tmp_path / "b"))
    writer.set_alias(name, "champion", first)
    local_root = tmp_path / "models"
    newest_dir = save_tiny_cf_model("cf-v20261201T000000Z", local_root)
    (local_root / "cf" / catalog).mkdir(parents=True)
    newest_dir.rename(local_root / "cf" / catalog / newest_dir.name)

    reader = Registry(RegistrySettings(mlflow_tracking_uri=infra.config.mlflow_uri,
                                       model_cache_dir=tmp_path / "service-cache"))
    models = CfModels(local_root, [catalog], registry=reader)
    assert models.refresh() == [catalog]
    served_first = models.version(catalog)
    assert models.refresh() == []
    writer.set_alias(name, "champion", second)
    assert models.refresh() == [catalog]
    served_second = models.version(catalog)
    writer.delete_alias(name, "champion")
    assert models.refresh() == [catalog]

    assert served_first == f"{name}/{first}@champion (cf-v20261101T000000Z)"
    assert served_second == f"{name}/{second}@champion (cf-v20261102T000000Z)"
    assert models.version(catalog) == "cf-v20261201T000000Z"
    assert list((tmp_path / "service-cache" / name).iterdir())  # the versions were downloaded into the cache
