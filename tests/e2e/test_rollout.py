"""Guarded rollout end to end (issue 12, decision 1006), at small scale on the real stack: a registered model of
this test's own (so the stack's ``pickwise-ranker`` is untouched) served by an extra reranker that follows it, an
extra gateway giving half of the shoppers the challenger, impressions and clicks through the broker into
Postgres, and the rollout controller's round on them.

The shopper: looks at the first three results and clicks the first one rated at least 4.2 (a deterministic,
position-biased rule: the same page always gets the same click). The shipped ranker is the champion; a LightGBM
ranker trained on reversed preferences (low rating and low retrieval score first) is the bad challenger and is
rolled back on CTR, with the reason in MLflow, in ``model_events`` and in the metric; the champion's own files
registered again are the good challenger, and it is promoted once it held."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from pickwise_common.launcher.processes import wait_until
from pickwise_common.registry import Registry, RegistrySettings
from pickwise_common.settings import REPO_ROOT
from pickwise_common.testing.model_events import rollout_outcomes
from pickwise_pipeline import rollout

pytestmark = pytest.mark.e2e

QUERIES = ("samsung phone", "redmi phone with 4gb ram", "realme under 15000", "vivo 128gb storage",
           "oppo phone under 20k")
LOOKED_AT = 3
LIKED_RATING = 4.2
MIN_IMPRESSIONS = 30  # per arm
MAX_SHOPPERS = 60


def shipped_ranker(folder: Path) -> Path:
    """The repository's ranker file pair, copied (the champion, and later the good challenger)."""
    folder.mkdir(parents=True)
    for path in (REPO_ROOT / "models" / "ranker").glob("ranker-v*"):
        shutil.copy(path, folder / path.name)
    return folder


def reversed_ranker(folder: Path, feature_names: list[str]) -> Path:
    """A LightGBM LambdaRank model on the shipped feature set that learned the opposite of what shoppers like:
    the lower an item's rating and retrieval score, the higher it ranks."""
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(7)
    rows = rng.random((400, len(feature_names)))
    rating, fused = feature_names.index("rating_norm"), feature_names.index("fused_norm")
    liking = 0.7 * (1 - rows[:, rating]) + 0.3 * (1 - rows[:, fused])
    labels = np.digitize(liking, [0.4, 0.7])
    booster = lgb.train({"objective": "lambdarank", "verbosity": -1, "num_leaves": 7, "min_data_in_leaf": 5,
                         "seed": 1, "num_threads": 1},
                        lgb.Dataset(rows, label=labels, group=[10] * 40), num_boost_round=30)
    folder.mkdir(parents=True)
    booster.save_model(str(folder / "ranker-v20990101T000000Z.txt"))
    (folder / "ranker-v20990101T000000Z.json").write_text(json.dumps({
        "version": "20990101T000000Z", "model": "lightgbm-lambdarank", "feature_names": feature_names,
        "validation": {"ndcg@10_ranker": 0.99, "ndcg@10_retrieval": 0.5}}))
    return folder


def clicked_position(items: list[dict]) -> int | None:
    for position, item in enumerate(items[:LOOKED_AT]):
        if (item.get("rating") or 0) >= LIKED_RATING:
            return position
    return None


def drive(client: httpx.Client, model: str, tag: str) -> dict[str, int]:
    """Shoppers, each searching every query once and clicking by the rule, until both arms have
    ``MIN_IMPRESSIONS`` impressions scored by this model: requests and clicks per arm."""
    counts = {"champion": 0, "challenger": 0, "clicks": 0}
    for shopper in range(MAX_SHOPPERS):
        if min(counts["champion"], counts["challenger"]) >= MIN_IMPRESSIONS:
            break
        user = f"rollout-{tag}-{shopper}"
        for query in QUERIES:
            response = client.get("/v1/search", params={"q": query, "user_id": user, "k": 10})
            assert response.status_code == 200, response.text
            body = response.json()
            label = body["model_versions"].get("ranker", "")
            if label.startswith(f"{model}/"):
                counts[label.rsplit("@", 1)[1]] += 1
            position = clicked_position(body["items"])
            if position is not None:
                event = {"type": "click", "user_id": user, "item_id": body["items"][position]["item_id"],
                         "request_id": body["request_id"], "position": position, "source": "search"}
                assert client.post("/v1/events", json=event).status_code == 202
                counts["clicks"] += 1
    assert min(counts["champion"], counts["challenger"]) >= MIN_IMPRESSIONS, counts
    return counts


async def _stored(url: str, model: str) -> tuple[int, int]:
    """Impressions scored by ``model`` and clicks that name one of their request ids, as stored."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT count(DISTINCT i.event_id) AS impressions, count(DISTINCT e.event_id) AS clicks
               FROM impressions i LEFT JOIN events e ON e.request_id = i.request_id AND e.type = 'click'
               WHERE i.model_versions->>'ranker' LIKE $1""", f"{model}/%")
        return row["impressions"], row["clicks"]
    finally:
        await conn.close()


def wait_stored(url: str, model: str, impressions: int, clicks: int) -> None:
    def done() -> bool:
        have = asyncio.run(_stored(url, model))
        return have[0] >= impressions and have[1] >= clicks

    wait_until(done, timeout_s=90, what="impressions and clicks stored", interval_s=0.5)


def _tick(url: str, registry: Registry, model: str, settings: rollout.RolloutSettings) -> rollout.Decision:
    return asyncio.run(rollout.tick_once(url, registry, settings, models=[model]))[model]


@pytest.fixture
def served(stack, infra, api_key, tmp_path):
    """(registry, model name, gateway client): an extra reranker following the test's model, an extra gateway
    calling it with half of the shoppers on the challenger and the rest on variant A, its control (no
    exploration, no over-shown filter: the same page for the same query)."""
    registry = Registry(RegistrySettings(mlflow_tracking_uri=infra.config.mlflow_uri,
                                         model_cache_dir=tmp_path / "writer-cache"))
    model = f"pickwise-ranker-e2e-{uuid.uuid4().hex[:8]}"
    champion_dir = shipped_ranker(tmp_path / "champion")
    feature_names = json.loads(next(champion_dir.glob("*.json")).read_text())["feature_names"]
    champion = registry.register(model, artifact_dir=champion_dir)
    registry.set_alias(model, "champion", champion)
    bad = registry.register(model, artifact_dir=reversed_ranker(tmp_path / "bad", feature_names),
                            tags={"gate": "passed"})
    registry.set_alias(model, "challenger", bad)
    reranker, reranker_url = stack.start_extra("reranker", {
        "PICKWISE_RANKER_REGISTERED_NAME": model, "PICKWISE_REGISTRY_POLL_S": "0.5",
        "PICKWISE_MODEL_CACHE_DIR": str(tmp_path / "reranker-cache")})
    gateway, gateway_url = stack.start_extra("gateway", {
        "PICKWISE_RERANKER_URL": reranker_url, "PICKWISE_CHALLENGER_SHARE": "0.5", "PICKWISE_AB_SPLIT": "0",
        "PICKWISE_EXPLORATION_SHARE": "0", "PICKWISE_OVERSHOWN_AFTER": "0"})
    try:
        with httpx.Client(base_url=gateway_url, headers={"X-API-Key": api_key}, timeout=30) as client:
            yield registry, model, client, (champion, bad)
    finally:
        gateway.stop()
        reranker.stop()


def test_a_bad_challenger_is_rolled_back_and_a_good_one_promoted(served, infra, tmp_path) -> None:
    registry, model, client, (champion, bad) = served
    url = infra.config.postgres_url
    settings = rollout.RolloutSettings(rollout_min_impressions=MIN_IMPRESSIONS, rollout_window_s=3600)

    # the controller sees the new challenger before any traffic: it holds and starts its window
    assert _tick(url, registry, model, settings).reason == "too_few_impressions"
    bad_traffic = drive(client, model, "bad")
    wait_stored(url, model, bad_traffic["champion"] + bad_traffic["challenger"], bad_traffic["clicks"])

    decision = _tick(url, registry, model, settings)

    assert (decision.action, decision.reason) == ("rolled_back", "ctr"), (decision, bad_traffic)
    assert registry.alias_version(model, "challenger") is None
    assert registry.alias_version(model, "champion") == champion
    assert registry.version(model, bad).tags["rollback_reason"] == decision.detail
    rows = asyncio.run(rollout_outcomes(url, model))
    assert [(r["version"], r["action"], r["reason"]) for r in rows] == [(bad, "rolled_back", decision.detail)]
    assert REGISTRY.get_sample_value("pickwise_rollout_actions_total",
                                     {"model": model, "action": "rolled_back", "reason": "ctr"}) == 1

    # the good challenger: the champion's own files registered again
    good = registry.register(model, artifact_dir=shipped_ranker(tmp_path / "good"))
    registry.set_alias(model, "challenger", good)
    assert _tick(url, registry, model, settings).reason == "too_few_impressions"
    traffic = drive(client, model, "good")
    total = {key: traffic[key] + bad_traffic[key] for key in traffic}
    wait_stored(url, model, total["champion"] + total["challenger"], total["clicks"])

    decision = _tick(url, registry, model, settings.model_copy(update={"rollout_window_s": 0}))

    assert decision.action == "promoted", (decision, traffic)
    assert registry.alias_version(model, "champion") == good
    assert registry.alias_version(model, "challenger") is None
    assert [r["action"] for r in asyncio.run(rollout_outcomes(url, model))] == ["rolled_back", "promoted"]
