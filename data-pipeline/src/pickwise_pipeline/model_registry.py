"""The pipeline's side of the model registry (decision 1003): log a training run, register its files, and let
the offline gate decide the alias; ``pickwise-pipeline registry ...`` for operators and tests.

The gate: no champion -> the version becomes ``champion`` ('promoted', reason 'first version'); a version that
beats the champion by at least ``min_gain`` on the same held-out data becomes ``challenger`` (ranker: the online
test decides) or ``champion`` (CF: no online traffic split); otherwise it is registered, tagged ``gate=failed``
and recorded 'rejected'. A version below ``floor`` (the ranker: retrieval order) is rejected whatever the champion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.registry import (
    CHALLENGER,
    CHAMPION,
    FILES_SHA256_TAG,
    LocalModel,
    ModelEvent,
    Registry,
    RegistrySettings,
    dir_sha256,
    record_model_event,
)

log = logging.getLogger("pickwise.pipeline.model_registry")

PROMOTED = "promoted"
REJECTED = "rejected"


@dataclass(frozen=True)
class GateDecision:
    action: str                     # 'promoted' (-> champion), 'challenger' or 'rejected'
    reason: str
    gain: float | None = None

    @property
    def alias(self) -> str | None:
        return {PROMOTED: CHAMPION, CHALLENGER: CHALLENGER}.get(self.action)


def decide(candidate: float, champion: float | None, *, has_champion: bool, min_gain: float,
           win_action: str = CHALLENGER, floor: float | None = None, floor_name: str = "baseline") -> GateDecision:
    """The offline gate (pure). ``champion`` is the champion's value on the same held-out data (None: the
    champion could not be scored there); ``floor`` a value the candidate must reach whatever the champion."""
    if floor is not None and candidate < floor:
        return GateDecision(REJECTED, f"{candidate:.4f} is below {floor_name} ({floor:.4f})", candidate - floor)
    if not has_champion:
        return GateDecision(PROMOTED, "first version")
    if champion is None:
        return GateDecision(win_action, "the champion has no value on this held-out data")
    gain = candidate - champion
    if gain >= min_gain:
        return GateDecision(win_action, f"beats the champion by {gain:+.4f} (min_gain {min_gain})", gain)
    return GateDecision(REJECTED, f"gain {gain:+.4f} over the champion is below min_gain {min_gain}", gain)


@dataclass(frozen=True)
class GateResult:
    name: str
    version: str | None             # None without a registry
    decision: GateDecision
    metric: str
    candidate: float
    champion: float | None
    champion_version: str | None
    run_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "action": self.decision.action,
                "alias": self.decision.alias, "reason": self.decision.reason, "metric": self.metric,
                "candidate": self.candidate, "champion": self.champion, "champion_version": self.champion_version,
                "gain": self.decision.gain, "run_id": self.run_id}


def registry_from(uri: str | None) -> Registry | None:
    """The registry at ``uri`` (default: ``PICKWISE_MLFLOW_TRACKING_URI``); None when it is off ("none")."""
    settings = RegistrySettings() if uri is None else RegistrySettings(mlflow_tracking_uri=uri)
    return Registry(settings) if settings.registry_enabled else None


def log_training_run(registry: Registry, experiment: str, *, params: Mapping[str, object],
                     metrics: Mapping[str, float], artifact_dir: Path, tags: Mapping[str, str] | None = None) -> str:
    """One MLflow run with the training's params, metrics and files (the files' sha256 as a tag)."""
    all_tags = {FILES_SHA256_TAG: dir_sha256(artifact_dir), **(tags or {})}
    return registry.log_run(experiment, params=params, metrics=metrics, artifact_dir=artifact_dir, tags=all_tags)


def register_with_gate(registry: Registry, name: str, artifact_dir: Path, metric_name: str, candidate_value: float,
                       champion_value_fn: Callable[[LocalModel], float | None], *, run_id: str | None = None,
                       min_gain: float = 0.0, win_action: str = CHALLENGER, floor: float | None = None,
                       floor_name: str = "baseline", postgres_url: str | None = None,
                       detail: Mapping[str, Any] | None = None, tags: Mapping[str, str] | None = None) -> GateResult:
    """Register ``artifact_dir`` as a new version of ``name`` and apply the gate (see the module docstring).
    ``champion_value_fn`` scores the fetched champion on the candidate's held-out data. The decision is written
    to ``model_events`` when ``postgres_url`` is given."""
    champion = registry.fetch(name, CHAMPION)
    champion_value = champion_value_fn(champion) if champion is not None else None
    decision = decide(candidate_value, champion_value, has_champion=champion is not None, min_gain=min_gain,
                      win_action=win_action, floor=floor, floor_name=floor_name)
    version_tags = {**(tags or {}), FILES_SHA256_TAG: dir_sha256(artifact_dir),
                    "gate": "failed" if decision.action == REJECTED else "passed", "gate_metric": metric_name,
                    "gate_value": f"{candidate_value:.6f}", "gate_reason": decision.reason}
    if champion is not None:
        version_tags["gate_champion_version"] = champion.version
        if champion_value is not None:
            version_tags["gate_champion_value"] = f"{champion_value:.6f}"
    version = registry.register(name, run_id=run_id, artifact_dir=None if run_id else artifact_dir, tags=version_tags)
    if decision.alias is not None:
        registry.set_alias(name, decision.alias, version)
    result = GateResult(name, version, decision, metric_name, candidate_value, champion_value,
                        champion.version if champion else None, run_id, dict(detail or {}))
    if postgres_url:
        event_detail = {k: v for k, v in result.as_dict().items() if k not in ("name", "version", "reason")}
        asyncio.run(record_model_event(postgres_url, ModelEvent(name, version, decision.action, decision.reason,
                                                                {**event_detail, **result.detail})))
    log.info("%s version %s: %s (%s)", name, version, decision.action, decision.reason)
    return result


def register_files(registry: Registry, name: str, artifact_dir: Path, *, tags: Mapping[str, str] | None = None,
                   alias: str | None = None, force: bool = False, reason: str = "registered by an operator",
                   postgres_url: str | None = None) -> tuple[str, bool]:
    """Register ``artifact_dir`` as it is (no gate), unless a version with the same files exists (``force``
    registers anyway); set ``alias`` on it. Returns (version, newly registered)."""
    digest = dir_sha256(artifact_dir)
    existing = None if force else registry.find_version(name, FILES_SHA256_TAG, digest)
    created = existing is None
    version = existing or registry.register(name, artifact_dir=artifact_dir,
                                            tags={FILES_SHA256_TAG: digest, **(tags or {})})
    if alias is not None and registry.alias_version(name, alias) != version:
        registry.set_alias(name, alias, version)
        if postgres_url:
            action = PROMOTED if alias == CHAMPION else CHALLENGER
            asyncio.run(record_model_event(postgres_url, ModelEvent(name, version, action, reason,
                                                                    {"forced": force, "sha256": digest})))
    return version, created


# ---- the command line ----------------------------------------------------------------------------------------

def _postgres_url() -> str | None:
    return os.environ.get("PICKWISE_POSTGRES_URL") or None


def _registry_or_fail(args: argparse.Namespace) -> Registry | None:
    registry = registry_from(args.registry_uri)
    if registry is None:
        print("the model registry is off (PICKWISE_MLFLOW_TRACKING_URI=none); pass --registry-uri", file=sys.stderr)
    return registry


def run_list(args: argparse.Namespace) -> int:
    registry = _registry_or_fail(args)
    if registry is None:
        return 2
    rows = [{"name": v.name, "version": v.version, "aliases": list(v.aliases), "gate": v.tags.get("gate"),
             "source": v.source} for v in registry.versions(args.name)]
    print(json.dumps(rows, indent=2))
    return 0


def run_set_alias(args: argparse.Namespace) -> int:
    registry = _registry_or_fail(args)
    if registry is None:
        return 2
    registry.set_alias(args.name, args.alias, args.version)
    url = _postgres_url()
    if url and args.alias in (CHAMPION, CHALLENGER):
        action = PROMOTED if args.alias == CHAMPION else CHALLENGER
        asyncio.run(record_model_event(url, ModelEvent(args.name, args.version, action, args.reason)))
    print(json.dumps({"name": args.name, "alias": args.alias, "version": args.version}))
    return 0


def run_delete_alias(args: argparse.Namespace) -> int:
    registry = _registry_or_fail(args)
    if registry is None:
        return 2
    version = registry.alias_version(args.name, args.alias)
    deleted = registry.delete_alias(args.name, args.alias)
    url = _postgres_url()
    if deleted and url and version is not None:
        asyncio.run(record_model_event(url, ModelEvent(args.name, version, "rolled_back", args.reason,
                                                       {"alias": args.alias})))
    print(json.dumps({"name": args.name, "alias": args.alias, "version": version, "deleted": deleted}))
    return 0


def run_register_dir(args: argparse.Namespace) -> int:
    registry = _registry_or_fail(args)
    if registry is None:
        return 2
    directory = Path(args.dir)
    if not directory.is_dir() or not any(p.is_file() for p in directory.rglob("*")):
        print(f"--dir: {directory} is not a directory with files", file=sys.stderr)
        return 2
    version, created = register_files(registry, args.name, directory, alias=args.alias, force=args.force,
                                      reason=args.reason, postgres_url=_postgres_url())
    print(json.dumps({"name": args.name, "version": version, "created": created, "alias": args.alias}))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("registry", help="the model registry: list versions, move aliases, register files")
    parser.add_argument("--registry-uri", default=None, help="default: $PICKWISE_MLFLOW_TRACKING_URI")
    sub = parser.add_subparsers(dest="registry_command", required=True)
    listing = sub.add_parser("list", help="every registered version with its aliases and gate outcome")
    listing.add_argument("--name", default=None)
    listing.set_defaults(func=run_list)
    set_alias = sub.add_parser("set-alias", help="point an alias (champion, challenger) at a version")
    set_alias.add_argument("--name", required=True)
    set_alias.add_argument("--alias", required=True)
    set_alias.add_argument("--version", required=True)
    set_alias.add_argument("--reason", default="set by an operator")
    set_alias.set_defaults(func=run_set_alias)
    delete_alias = sub.add_parser("delete-alias", help="remove an alias (recorded as rolled_back)")
    delete_alias.add_argument("--name", required=True)
    delete_alias.add_argument("--alias", required=True)
    delete_alias.add_argument("--reason", default="removed by an operator")
    delete_alias.set_defaults(func=run_delete_alias)
    register_dir = sub.add_parser("register-dir", help="register a directory's files as a new version (no gate)")
    register_dir.add_argument("--name", required=True)
    register_dir.add_argument("--dir", required=True)
    register_dir.add_argument("--alias", default=None, help="e.g. challenger: how a test installs a bad model")
    register_dir.add_argument("--force", action="store_true",
                              help="register even when a version with the same files exists")
    register_dir.add_argument("--reason", default="registered by an operator")
    register_dir.set_defaults(func=run_register_dir)


# ---- train-ranker (judgment path): the champion re-scored on the candidate's validation queries ----------------

RANKER_EXPERIMENT = "pickwise-ranker"


def newest_ranker_file(path: Path) -> Path | None:
    """The newest ``ranker-v*.txt`` at ``path`` (the file itself, or in the directory and below)."""
    if path.is_file():
        return path
    found = sorted(path.rglob("ranker-v*.txt"), key=lambda p: p.stem, reverse=True) if path.is_dir() else []
    return found[0] if found else None


def ranker_ndcg(path: Path, queries: Any) -> float | None:
    """Validation NDCG@10 of the LightGBM model at ``path`` on ``queries`` (``train_ranker.Judged``); None when
    there is no model there or it needs features this code no longer computes."""
    import lightgbm as lgb
    import numpy as np

    from pickwise_common.ranking_features import FEATURE_NAMES, extract_features
    from pickwise_pipeline.train_ranker import mean_ndcg

    model_file = newest_ranker_file(path)
    if model_file is None:
        return None
    booster = lgb.Booster(model_file=str(model_file))
    names = list(booster.feature_name())
    if any(n not in FEATURE_NAMES for n in names):
        return None
    columns = [FEATURE_NAMES.index(n) for n in names]
    scores = [list(booster.predict(np.asarray(extract_features(q.candidates, q.parsed), dtype=np.float64)[:, columns]))
              if q.candidates else [] for q in queries]
    return mean_ndcg(queries, scores)


UNREGISTERED = "unregistered"


def _register_ranker(registry: Registry, staging_dir: str, metadata: dict[str, Any], validation_queries: Any,
                     candidate: float, retrieval: float, *, min_gain: float, postgres_url: str | None) -> dict:
    validation = metadata.get("validation") or {}
    metrics = {"ndcg_at_10_ranker": candidate, "ndcg_at_10_retrieval": retrieval,
               **{f"val_{k.replace('@', '_at_')}": float(v) for k, v in validation.items()
                  if isinstance(v, int | float)}}
    params = {"rounds": metadata.get("rounds"), "judgments_sha256": (metadata.get("judgments") or {}).get("sha256"),
              "validation_queries": len(validation_queries), **(metadata.get("params") or {})}
    run_id = log_training_run(registry, RANKER_EXPERIMENT, params=params, metrics=metrics,
                              artifact_dir=Path(staging_dir), tags={"ranker_version": str(metadata["version"])})
    result = register_with_gate(registry, "pickwise-ranker", Path(staging_dir), "ndcg_at_10_ranker", candidate,
                                lambda champion: ranker_ndcg(champion.path, validation_queries),
                                run_id=run_id, min_gain=min_gain, win_action=CHALLENGER, floor=retrieval,
                                floor_name="retrieval order", postgres_url=postgres_url)
    return result.as_dict()


def publish_ranker(booster: Any, metadata: dict[str, Any], validation_queries: Any, out_dir: Path, *,
                   registry: Registry | None, min_gain: float, postgres_url: str | None = None) -> tuple[Path, dict]:
    """Save the trained ranker where the gate says: ``out_dir`` when it becomes the champion (what a reranker
    without a registry loads), ``out_dir/challenger`` or ``out_dir/rejected`` otherwise. With a registry the run
    is logged and the version registered; without one the newest model in ``out_dir`` is the champion.
    A model below retrieval order on the validation queries is never promoted."""
    import shutil
    import tempfile

    from pickwise_pipeline.train_ranker import mean_ndcg, predict, save

    candidate = mean_ndcg(validation_queries, predict(booster, validation_queries))
    retrieval = mean_ndcg(validation_queries, None)
    with tempfile.TemporaryDirectory(prefix="ranker-") as staging_dir:
        staged = save(booster, Path(staging_dir), metadata)
        if registry is not None:
            try:
                outcome = _register_ranker(registry, staging_dir, metadata, validation_queries, candidate, retrieval,
                                           min_gain=min_gain, postgres_url=postgres_url)
            except DependencyUnavailable as exc:
                # the model is kept (out_dir/unregistered) for `registry register-dir` once the registry answers
                print(f"train-ranker: not registered: {exc}", file=sys.stderr, flush=True)
                outcome = {"action": UNREGISTERED, "reason": str(exc), "candidate": candidate}
        else:
            # what a reranker without a registry serves: the newest model directly in out_dir
            served = sorted(out_dir.glob("ranker-v*.txt"), key=lambda p: p.stem, reverse=True)
            current = served[0] if served else None
            champion_value = ranker_ndcg(current, validation_queries) if current is not None else None
            decision = decide(candidate, champion_value, has_champion=current is not None, min_gain=min_gain,
                              win_action=PROMOTED, floor=retrieval, floor_name="retrieval order")
            outcome = {"action": decision.action, "reason": decision.reason, "candidate": candidate,
                       "champion": champion_value, "champion_file": current.name if current else None}
        target = out_dir if outcome["action"] == PROMOTED else out_dir / str(outcome["action"])
        target.mkdir(parents=True, exist_ok=True)
        for path in (staged, staged.with_suffix(".json")):
            shutil.move(str(path), target / path.name)
    return target / staged.name, outcome


# ---- train-cf: a held-out window at the end of the training window ---------------------------------------------

CF_METRIC = "val_ndcg_at_10"
VAL_WINDOW_TAG = "val_window"


def cf_validation(interactions: Any, catalog: str, *, params: Any, categories: Mapping[str, str],
                  holdout_days: int, k: int = 10) -> dict[str, Any] | None:
    """Train on the window's events before its last ``holdout_days`` days and score the served feed
    (``CfModel.recommend``) on what returning customers bought in those days: NDCG@k and recall@k. None when
    either side is empty. The model that ships is trained on the whole window; this number describes its
    recipe on a window every later run with the same ``--until`` shares (``val_window``)."""
    from collections import defaultdict
    from datetime import UTC, datetime, time, timedelta

    from pickwise_common import cf
    from pickwise_pipeline.evaluate_cf import ndcg_at_k, recall_at_k
    from pickwise_pipeline.train_cf import train

    if not interactions or holdout_days <= 0:
        return None
    first_day = min(e.ts for e in interactions).date()
    last_day = max(e.ts for e in interactions).date()
    cut_day = last_day - timedelta(days=holdout_days - 1)
    cut = datetime.combine(cut_day, time.min, tzinfo=UTC)
    before = [e for e in interactions if e.ts < cut]
    history: dict[str, dict[str, float]] = defaultdict(dict)
    for e in before:
        h = history[e.user_id]
        h[e.item_id] = h.get(e.item_id, 0.0) + cf.event_cf_weight(e.type, e.quantity)
    relevant: dict[str, set[str]] = defaultdict(set)
    for e in interactions:
        if e.ts >= cut and e.type == "purchase" and e.user_id in history:
            relevant[e.user_id].add(e.item_id)
    if not before or not relevant:
        return None
    model = train(before, catalog, params=params, categories=categories)
    ndcg, recall = [], []
    for user, items in relevant.items():
        ranked = [i for i, _ in model.recommend(history[user], k)]
        ndcg.append(ndcg_at_k(ranked, items, k))
        recall.append(recall_at_k(ranked, items, k))
    return {CF_METRIC: sum(ndcg) / len(ndcg), f"val_recall_at_{k}": sum(recall) / len(recall),
            "val_users": float(len(relevant)),
            VAL_WINDOW_TAG: f"{first_day}..{cut_day - timedelta(days=1)}|{cut_day}..{last_day}"}


def publish_cf(model: Any, directory: Path, validation: Mapping[str, Any] | None, *, registry: Registry,
               min_gain: float, postgres_url: str | None = None) -> dict[str, Any]:
    """Log the CF run and register ``pickwise-cf-<catalog>``; the gate compares the validation NDCG with the
    champion's logged one on the same ``val_window`` (a champion from another window has no value there)."""
    from pickwise_common.registry import cf_model_name

    name = cf_model_name(model.catalog)
    numbers = {k: float(v) for k, v in model.metrics.items() if isinstance(v, int | float)}
    metrics = {**numbers, **{k: float(v) for k, v in (validation or {}).items() if k != VAL_WINDOW_TAG}}
    window = str((validation or {}).get(VAL_WINDOW_TAG, ""))
    tags = {"cf_version": model.version, "catalog": model.catalog, VAL_WINDOW_TAG: window}
    run_id = log_training_run(registry, name, params={**model.params, "window": json.dumps(model.window)},
                              metrics=metrics, artifact_dir=directory, tags=tags)
    if validation is None:
        # nothing to gate on: registered; the first version serves, a later one waits for an operator
        result = register_with_gate(registry, name, directory, "no validation window", 0.0, lambda _c: None,
                                    run_id=run_id, win_action=REJECTED, postgres_url=postgres_url, tags=tags)
        return result.as_dict()

    def champion_value(champion: LocalModel) -> float | None:
        info = registry.version(name, champion.version)
        if not window or info.tags.get(VAL_WINDOW_TAG) != window:
            return None
        return registry.version_metric(name, champion.version, CF_METRIC)

    result = register_with_gate(registry, name, directory, CF_METRIC, float(validation[CF_METRIC]), champion_value,
                                run_id=run_id, min_gain=min_gain, win_action=PROMOTED, postgres_url=postgres_url,
                                tags=tags)
    return result.as_dict()
