"""The offline gate against the session's real MLflow server and Postgres: who becomes champion or challenger,
what is rejected and recorded, and the operators' ``registry`` command."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from pickwise_common.registry import Registry, RegistrySettings
from pickwise_pipeline import model_registry
from pickwise_pipeline.cli import main as pipeline_main
from pickwise_pipeline.train_cf import Interaction, TrainParams, train

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(infra, tmp_path: Path) -> Registry:
    return Registry(RegistrySettings(mlflow_tracking_uri=infra.config.mlflow_uri, model_cache_dir=tmp_path / "cache"))


def files(root: Path, content: str) -> Path:
    root.mkdir(parents=True)
    (root / "ranker-v1.txt").write_text(content)
    (root / "ranker-v1.json").write_text("{}")
    return root


def events_of(postgres_url: str, name: str) -> list[tuple[str, str, str]]:
    async def go() -> list[tuple[str, str, str]]:
        conn = await asyncpg.connect(postgres_url)
        try:
            rows = await conn.fetch("SELECT version, action, reason FROM model_events WHERE model_name=$1 ORDER BY id",
                                    name)
        finally:
            await conn.close()
        return [(r["version"], r["action"], r["reason"]) for r in rows]

    return asyncio.run(go())


def gate(registry: Registry, infra, name: str, folder: Path, value: float, champion_value: float | None):
    return model_registry.register_with_gate(registry, name, folder, "ndcg_at_10", value, lambda _c: champion_value,
                                             min_gain=0.01, postgres_url=infra.config.postgres_url)


def test_first_version_becomes_champion_and_is_recorded(registry: Registry, infra, tmp_path: Path) -> None:
    name = f"gate-{uuid.uuid4().hex[:8]}"

    result = gate(registry, infra, name, files(tmp_path / "v1", "one"), 0.60, None)

    assert registry.alias_version(name, "champion") == result.version
    assert events_of(infra.config.postgres_url, name) == [(result.version, "promoted", "first version")]


def test_worse_version_is_rejected_tagged_and_recorded(registry: Registry, infra, tmp_path: Path) -> None:
    name = f"gate-{uuid.uuid4().hex[:8]}"
    first = gate(registry, infra, name, files(tmp_path / "v1", "one"), 0.60, None)

    worse = gate(registry, infra, name, files(tmp_path / "v2", "two"), 0.55, 0.60)

    assert worse.decision.action == "rejected"
    assert registry.alias_version(name, "champion") == first.version
    assert registry.alias_version(name, "challenger") is None
    assert registry.version(name, worse.version).tags["gate"] == "failed"
    assert events_of(infra.config.postgres_url, name)[-1][:2] == (worse.version, "rejected")


def test_better_version_becomes_challenger(registry: Registry, infra, tmp_path: Path) -> None:
    name = f"gate-{uuid.uuid4().hex[:8]}"
    first = gate(registry, infra, name, files(tmp_path / "v1", "one"), 0.60, None)

    better = gate(registry, infra, name, files(tmp_path / "v2", "two"), 0.65, 0.60)

    assert registry.alias_version(name, "challenger") == better.version
    assert registry.alias_version(name, "champion") == first.version
    assert registry.version(name, better.version).tags["gate"] == "passed"
    assert events_of(infra.config.postgres_url, name)[-1][:2] == (better.version, "challenger")


def test_the_champion_is_scored_by_the_callers_function_on_its_own_files(registry: Registry, infra,
                                                                         tmp_path: Path) -> None:
    name = f"gate-{uuid.uuid4().hex[:8]}"
    gate(registry, infra, name, files(tmp_path / "v1", "0.70"), 0.70, None)

    seen: list[str] = []

    def score(champion) -> float:
        text = (champion.path / "ranker-v1.txt").read_text()
        seen.append(text)
        return float(text)

    result = model_registry.register_with_gate(registry, name, files(tmp_path / "v2", "0.65"), "ndcg_at_10", 0.65,
                                               score, min_gain=0.0)
    assert seen == ["0.70"]
    assert result.decision.action == "rejected"


def test_register_dir_forces_a_challenger_and_is_idempotent_without_force(registry: Registry, infra,
                                                                            tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    folder = files(tmp_path / "bad", "bad model")
    base = ["registry", "--registry-uri", infra.config.mlflow_uri]

    assert pipeline_main([*base, "register-dir", "--name", name, "--dir", str(folder), "--alias", "challenger"]) == 0
    first = registry.alias_version(name, "challenger")
    assert pipeline_main([*base, "register-dir", "--name", name, "--dir", str(folder)]) == 0
    unchanged = [v.version for v in registry.versions(name)]
    assert pipeline_main([*base, "register-dir", "--name", name, "--dir", str(folder), "--alias", "challenger",
                          "--force"]) == 0

    assert first is not None and unchanged == [first]
    assert registry.alias_version(name, "challenger") == str(int(first) + 1)
    assert pipeline_main([*base, "delete-alias", "--name", name, "--alias", "challenger"]) == 0
    assert registry.alias_version(name, "challenger") is None


def test_register_dir_refuses_a_missing_directory(infra, tmp_path: Path, capsys) -> None:
    code = pipeline_main(["registry", "--registry-uri", infra.config.mlflow_uri, "register-dir", "--name", "x",
                          "--dir", str(tmp_path / "nowhere")])
    assert code == 2
    assert "--dir" in capsys.readouterr().err


def synthetic_purchases(days: int = 60, users: int = 40, items: int = 30) -> list[Interaction]:
    start = datetime(2011, 1, 1, tzinfo=UTC)
    out = []
    for day in range(days):
        for u in range(users):
            if (u + day) % 3 == 0:
                item = (u * 7 + day // 5) % items
                out.append(Interaction(f"u{u}", f"i{item}", "purchase", 1, f"inv{day}-{u}",
                                       start + timedelta(days=day)))
                out.append(Interaction(f"u{u}", f"i{(item + 1) % items}", "purchase", 1, f"inv{day}-{u}",
                                       start + timedelta(days=day, hours=1)))
    return out


def test_cf_same_window_retrain_without_gain_is_rejected(registry: Registry, infra, tmp_path: Path) -> None:
    from pickwise_common import cf

    catalog = f"synthetic{uuid.uuid4().hex[:6]}"
    interactions = synthetic_purchases()
    params = TrainParams(factors=8, iterations=3)
    validation = model_registry.cf_validation(interactions, catalog, params=params, categories={}, holdout_days=14)
    assert validation is not None and 0.0 <= validation["val_ndcg_at_10"] <= 1.0
    results = []
    for n in range(2):
        model = train(interactions, catalog, params=params, now=datetime(2011, 3, 2 + n, tzinfo=UTC))
        directory = cf.save(model, tmp_path / "models")
        results.append(model_registry.publish_cf(model, directory, validation, registry=registry, min_gain=0.001,
                                                 postgres_url=infra.config.postgres_url))

    assert [r["action"] for r in results] == ["promoted", "rejected"]
    assert results[1]["champion"] == pytest.approx(validation["val_ndcg_at_10"])
    assert registry.alias_version(f"pickwise-cf-{catalog}", "champion") == results[0]["version"]
    printed = json.dumps(results)  # what train-cf prints must be JSON
    assert "NaN" not in printed
