"""CF models by registry alias (decision 1003b), against a fake registry object: the registered champion wins
over the newest directory, its version is in ``model_version``, a moved alias swaps the model, a failing
registry keeps the served one, and without a champion the newest directory serves as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pickwise_common.testing.fake_registry import FakeRegistry
from pickwise_retriever.cf_serving import CfModels, cf_model_name

pytestmark = pytest.mark.unit


@pytest.fixture
def registry(tmp_path: Path, save_tiny_cf_model) -> FakeRegistry:
    fake = FakeRegistry(cf_model_name("retail"))
    for version, stamp in (("1", "cf-v20261101T000000Z"), ("2", "cf-v20261102T000000Z")):
        fake.versions[version] = save_tiny_cf_model(stamp, tmp_path / "registry" / version)
    fake.aliases["champion"] = "1"
    return fake


def test_the_registered_champion_wins_over_a_newer_directory(tmp_path, registry, save_tiny_cf_model):
    save_tiny_cf_model("cf-v20261201T000000Z", tmp_path / "models")
    models = CfModels(tmp_path / "models", ["retail", "flipkart"], registry=registry)
    assert models.refresh() == ["retail"]
    assert models.version("retail") == "pickwise-cf-retail/1@champion (cf-v20261101T000000Z)"
    assert models.status()["versions"]["flipkart"] is None
    assert set(registry.fetched) == {(cf_model_name("retail"), "champion"), (cf_model_name("flipkart"), "champion")}


def test_a_moved_champion_alias_swaps_the_model(tmp_path, registry):
    models = CfModels(tmp_path / "models", ["retail"], registry=registry)
    models.refresh()
    assert models.refresh() == []
    registry.aliases["champion"] = "2"
    assert models.refresh() == ["retail"]
    assert models.version("retail") == "pickwise-cf-retail/2@champion (cf-v20261102T000000Z)"


def test_a_failing_registry_keeps_the_served_model(tmp_path, registry, save_tiny_cf_model):
    save_tiny_cf_model("cf-v20261201T000000Z", tmp_path / "models")
    models = CfModels(tmp_path / "models", ["retail"], registry=registry)
    models.refresh()
    registry.down = True
    assert models.refresh() == []
    assert models.version("retail") == "pickwise-cf-retail/1@champion (cf-v20261101T000000Z)"
    assert "connection refused" in models.status()["registry_errors"]["retail"]


def test_a_failing_registry_at_start_serves_the_newest_directory(tmp_path, registry, save_tiny_cf_model):
    save_tiny_cf_model("cf-v20261201T000000Z", tmp_path / "models")
    registry.down = True
    models = CfModels(tmp_path / "models", ["retail"], registry=registry)
    assert models.refresh() == ["retail"]
    assert models.version("retail") == "cf-v20261201T000000Z"
    registry.down = False
    assert models.refresh() == ["retail"]
    assert models.version("retail").startswith("pickwise-cf-retail/1@champion")


def test_without_a_champion_the_newest_directory_serves_with_its_plain_version(tmp_path, registry, save_tiny_cf_model):
    del registry.aliases["champion"]
    save_tiny_cf_model("cf-v20261201T000000Z", tmp_path / "models")
    models = CfModels(tmp_path / "models", ["retail"], registry=registry)
    models.refresh()
    assert models.version("retail") == "cf-v20261201T000000Z"


def test_a_deleted_champion_alias_falls_back_to_the_newest_directory(tmp_path, registry, save_tiny_cf_model):
    save_tiny_cf_model("cf-v20261201T000000Z", tmp_path / "models")
    models = CfModels(tmp_path / "models", ["retail"], registry=registry)
    models.refresh()
    del registry.aliases["champion"]
    assert models.refresh() == ["retail"]
    assert models.version("retail") == "cf-v20261201T000000Z"


def test_a_fetched_artifact_with_the_version_directory_inside_is_found(tmp_path, registry, save_tiny_cf_model):
    wrapper = tmp_path / "fetched" / "3"
    wrapper.mkdir(parents=True)
    registry.versions["3"] = wrapper
    save_tiny_cf_model("cf-v20261103T000000Z", tmp_path / "inner")
    (tmp_path / "inner").rename(wrapper / "model")
    registry.aliases["champion"] = "3"
    models = CfModels(tmp_path / "models", ["retail"], registry=registry)
    models.refresh()
    assert models.version("retail") == "pickwise-cf-retail/3@champion (cf-v20261103T000000Z)"


def test_a_broken_registered_model_keeps_the_served_one(tmp_path, registry):
    models = CfModels(tmp_path / "models", ["retail"], registry=registry)
    models.refresh()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text(json.dumps({"version": "cf-v20261104T000000Z"}), encoding="utf-8")
    registry.versions["4"] = broken
    registry.aliases["champion"] = "4"
    assert models.refresh() == []
    assert models.version("retail") == "pickwise-cf-retail/1@champion (cf-v20261101T000000Z)"
    assert models.status()["failed"] == {"retail": "pickwise-cf-retail/4"}


def test_a_request_keeps_the_label_of_the_model_it_started_with(tmp_path, registry):
    models = CfModels(tmp_path / "models", ["retail"], registry=registry)
    models.refresh()
    started_with = models.get("retail")
    registry.aliases["champion"] = "2"
    models.refresh()
    assert models.label("retail", started_with) == "cf-v20261101T000000Z"
