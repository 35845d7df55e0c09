"""``pickwise-pipeline train-ranker``: train the reranker's LightGBM LambdaRank model from graded judgments.

Candidates and their retrieval scores come from the RUNNING retriever (``POST /v1/retrieve``), so the
model learns on exactly what it will rerank; features come from ``pickwise_common.ranking_features``, the
function the reranker serves with. Queries are split (by query, seeded) into train and validation; the
model file ``ranker-v<UTC timestamp>.txt`` and its metadata ``.json`` (feature names, version, validation
NDCG@10 of retrieval order vs ranker order) go to ``models/ranker`` (the reranker loads the newest at
start and on ``POST /v1/admin/reload``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from pickwise_common.ranking_features import FEATURE_NAMES, extract_features
from pickwise_common.schemas import Candidate, Constraints, RetrieveResponse
from pickwise_common.settings import REPO_ROOT, default_data_root
from pickwise_pipeline.progress import summary_line, track

log = logging.getLogger("pickwise.pipeline.train_ranker")

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank", "metric": "ndcg", "eval_at": [10], "learning_rate": 0.05, "num_leaves": 15,
    "min_data_in_leaf": 20, "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1,
    "lambdarank_truncation_level": 20, "verbosity": -1, "num_threads": 2, "seed": 13, "deterministic": True,
}


@dataclass
class Judged:
    """One query: its candidates in retrieval order, the parsed constraints and a grade per candidate."""

    qid: str
    query: str
    candidates: list[Candidate]
    parsed: Constraints
    labels: list[int]
    judgments: dict[str, int]


def load_judgments(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("query"), str) or not isinstance(row.get("judgments"), dict):
            raise ValueError(f"{path}:{n}: needs 'query' (string) and 'judgments' (object)")
        row.setdefault("qid", f"q{n}")
        rows.append(row)
    return rows


def candidate_label(candidate: Candidate, judgments: Mapping[str, int]) -> int:
    """A grouped candidate stands for its colour variants too: the best grade among them."""
    ids = [candidate.item.item_id, *candidate.variant_ids]
    return max((int(judgments.get(i, 0)) for i in ids), default=0)


def split_queries(qids: Sequence[str], validation_fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """A seeded query-level split: no query has candidates on both sides."""
    ordered = sorted(qids)
    random.Random(seed).shuffle(ordered)
    n_val = max(1, round(len(ordered) * validation_fraction)) if len(ordered) > 1 else 0
    return set(ordered[n_val:]), set(ordered[:n_val])


def ndcg_at_k(ranked_labels: Sequence[int], all_grades: Sequence[int], k: int = 10) -> float:
    """NDCG@k with gain 2^g - 1; the ideal ranking is over every judged item of the query."""
    def dcg(grades: Sequence[int]) -> float:
        return sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:k]))

    ideal = dcg(sorted(all_grades, reverse=True))
    return dcg(list(ranked_labels)) / ideal if ideal > 0 else 0.0


def mean_ndcg(queries: Sequence[Judged], scores: Sequence[Sequence[float]] | None, k: int = 10) -> float:
    """Mean NDCG@k of the queries ordered by ``scores`` (None: retrieval order)."""
    values = []
    for n, q in enumerate(queries):
        if scores is None:
            order = list(range(len(q.labels)))
        else:
            order = sorted(range(len(q.labels)), key=lambda i, s=scores[n]: (-s[i], i))
        values.append(ndcg_at_k([q.labels[i] for i in order], list(q.judgments.values()), k))
    return float(np.mean(values)) if values else 0.0


def oracle_scores(queries: Sequence[Judged]) -> list[list[float]]:
    """The best possible reordering of each query's candidates (the ceiling any reranker can reach)."""
    return [[float(label) for label in q.labels] for q in queries]


def fetch_candidates(rows: Sequence[dict[str, Any]], retriever_url: str, *, k: int, mode: str,
                     timeout_s: float) -> list[Judged]:
    judged = []
    with httpx.Client(base_url=retriever_url, timeout=timeout_s) as client:
        for row in track(rows, "train-ranker: retrieve candidates", unit="queries", summary=False):
            response = client.post("/v1/retrieve", json={"query": row["query"], "k": k, "mode": mode})
            response.raise_for_status()
            body = RetrieveResponse.model_validate(response.json())
            grades = {str(i): int(g) for i, g in row["judgments"].items()}
            judged.append(Judged(qid=str(row["qid"]), query=row["query"], candidates=body.candidates,
                                 parsed=body.parsed, labels=[candidate_label(c, grades) for c in body.candidates],
                                 judgments=grades))
    return judged


def _matrix(queries: Sequence[Judged]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    rows: list[list[float]] = []
    labels: list[int] = []
    groups: list[int] = []
    for q in queries:
        rows.extend(extract_features(q.candidates, q.parsed))
        labels.extend(q.labels)
        groups.append(len(q.candidates))
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)), np.asarray(labels), groups


def train(queries: Sequence[Judged], *, rounds: int, params: Mapping[str, Any] | None = None) -> Any:
    import lightgbm as lgb

    usable = [q for q in queries if q.candidates]
    x, y, groups = _matrix(usable)
    data = lgb.Dataset(x, label=y, group=groups, feature_name=list(FEATURE_NAMES), free_raw_data=False)
    return lgb.train(dict(params or DEFAULT_PARAMS), data, num_boost_round=rounds)


def predict(booster: Any, queries: Sequence[Judged]) -> list[list[float]]:
    return [list(booster.predict(np.asarray(extract_features(q.candidates, q.parsed), dtype=np.float64)))
            if q.candidates else [] for q in queries]


def cross_validated(queries: Sequence[Judged], *, folds: int, rounds: int, seed: int) -> dict[str, float]:
    """Query-level k-fold: mean NDCG@10 of retrieval order and of a ranker trained on the other folds."""
    qids = sorted(q.qid for q in queries)
    random.Random(seed).shuffle(qids)
    before, after = [], []
    for f in track(range(folds), "train-ranker: cross-validation", unit="folds", summary=False):
        held = set(qids[f::folds])
        test = [q for q in queries if q.qid in held]
        booster = train([q for q in queries if q.qid not in held], rounds=rounds)
        before.append(mean_ndcg(test, None))
        after.append(mean_ndcg(test, predict(booster, test)))
    return {"folds": folds, "ndcg@10_retrieval": round(float(np.mean(before)), 4),
            "ndcg@10_ranker": round(float(np.mean(after)), 4),
            "ndcg@10_oracle": round(mean_ndcg(queries, oracle_scores(queries)), 4)}


def save(booster: Any, out_dir: Path, metadata: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    version = metadata["version"]
    path = out_dir / f"ranker-v{version}.txt"
    booster.save_model(str(path))
    path.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")
    return path


def run(args: argparse.Namespace) -> int:
    if getattr(args, "from_events", False):
        from pickwise_pipeline.train_ranker_events import run_from_events

        return run_from_events(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    judgments_path = Path(args.judgments)
    rows = load_judgments(judgments_path)
    started = time.perf_counter()
    queries = fetch_candidates(rows, args.retriever_url, k=args.k, mode=args.mode, timeout_s=args.timeout_s)
    log.info("retrieved candidates for %d queries in %.1f s", len(queries), time.perf_counter() - started)
    train_ids, val_ids = split_queries([q.qid for q in queries], args.validation_fraction, args.seed)
    train_q = [q for q in queries if q.qid in train_ids]
    val_q = [q for q in queries if q.qid in val_ids]
    booster = train(train_q, rounds=args.rounds)
    validation = {"queries": len(val_q), "ndcg@10_retrieval": round(mean_ndcg(val_q, None), 4),
                  "ndcg@10_ranker": round(mean_ndcg(val_q, predict(booster, val_q)), 4),
                  "ndcg@10_oracle": round(mean_ndcg(val_q, oracle_scores(val_q)), 4)}
    cv = cross_validated(queries, folds=args.folds, rounds=args.rounds, seed=args.seed) if args.folds > 1 else None
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    gains = booster.feature_importance(importance_type="gain")
    importance = sorted(zip(FEATURE_NAMES, (float(g) for g in gains), strict=True), key=lambda kv: -kv[1])
    metadata = {
        "version": version, "trained_at": datetime.now(UTC).isoformat(), "model": "lightgbm-lambdarank",
        "feature_names": list(FEATURE_NAMES), "params": DEFAULT_PARAMS, "rounds": args.rounds,
        "judgments": {"file": judgments_path.name,
                      "sha256": hashlib.sha256(judgments_path.read_bytes()).hexdigest(),
                      "queries": len(queries), "train_queries": len(train_q), "validation_queries": len(val_q),
                      "seed": args.seed, "validation_fraction": args.validation_fraction},
        "retrieval": {"mode": args.mode, "k": args.k},
        "validation": validation, "cross_validation": cv,
        "top_features_by_gain": [{"feature": n, "gain": round(g, 3)} for n, g in importance[:10]],
    }
    # the offline gate (decision 1003): registered and given an alias, or set aside; never promoted below retrieval
    from pickwise_pipeline import model_registry

    path, gate = model_registry.publish_ranker(
        booster, metadata, val_q, Path(args.out_dir), registry=model_registry.registry_from(
            getattr(args, "registry_uri", "none")), min_gain=getattr(args, "min_gain", 0.001),
        postgres_url=os.environ.get("PICKWISE_POSTGRES_URL"))
    print(json.dumps({"model": str(path), "validation": validation, "cross_validation": cv, "gate": gate}, indent=2))
    # a row is one (query, candidate) pair the ranker learned from or was validated on
    print(summary_line("train-ranker", sum(len(q.candidates) for q in queries), time.perf_counter() - started),
          file=sys.stderr, flush=True)
    if args.reload_url:
        admin = os.environ.get("PICKWISE_ADMIN_KEY", "")
        response = httpx.post(args.reload_url.rstrip("/") + "/v1/admin/reload", headers={"X-Admin-Key": admin},
                              timeout=30)
        print(f"reranker reload: {response.status_code} {response.text[:200]}", file=sys.stderr)
        if response.status_code != 200:
            return 1
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train-ranker", help="train the LightGBM LambdaRank reranker from judgments",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_dir = Path(os.environ.get("PICKWISE_DATA_DIR") or default_data_root())
    parser.add_argument("--judgments", default=str(data_dir / "eval" / "flipkart_dev.jsonl"),
                        help="JSONL of {qid, query, judgments: {item_id: grade}} (default: %(default)s)")
    parser.add_argument("--retriever-url", default=os.environ.get("PICKWISE_RETRIEVER_URL", "http://127.0.0.1:8001"),
                        help="running retriever (default: $PICKWISE_RETRIEVER_URL or %(default)s)")
    parser.add_argument("--mode", default="hybrid", choices=("bm25", "dense", "hybrid"))
    parser.add_argument("--k", type=int, default=50, help="candidates per query (as served)")
    parser.add_argument("--validation-fraction", type=float, default=0.25)
    parser.add_argument("--folds", type=int, default=4, help="query-level cross-validation folds (1: off)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    parser.add_argument("--out-dir", default=os.environ.get("PICKWISE_RANKER_MODEL_DIR")
                        or str(REPO_ROOT / "models" / "ranker"))
    parser.add_argument("--registry-uri", default=None,
                        help="model registry (default: $PICKWISE_MLFLOW_TRACKING_URI; none: only --out-dir)")
    parser.add_argument("--min-gain", type=float, default=0.001,
                        help="validation NDCG@10 gain over the champion a new version needs (decision 1003)")
    parser.add_argument("--reload-url", default=None,
                        help="reranker base URL to POST /v1/admin/reload after saving (uses $PICKWISE_ADMIN_KEY)")
    from pickwise_pipeline.train_ranker_events import add_arguments

    add_arguments(parser)
    parser.set_defaults(func=run)
