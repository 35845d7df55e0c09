"""``pickwise-pipeline evaluate``: relevance of the RUNNING retriever (or gateway) over HTTP on a JSONL
query set ``{qid, query, judgments: {item_id: grade}}``: NDCG@10, Recall@50, MRR@10 (ranx's definitions) and
constraint_precision@10, per mode. The last line printed is one JSON object with the figures.

Variant grouping: the service returns one candidate per group (colour variants of one brand + model + RAM +
storage). Judgments name single items, so both sides are mapped to groups: a returned candidate counts as
its group, and a group's grade is the best grade of its judged members. A group is then relevant once,
however many colours it has — what a shopper sees is one card per model configuration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pickwise_client import Client
from pickwise_pipeline.catalog import FLIPKART, ColumnMapping, normalise, read_rows
from pickwise_pipeline.progress import summary_line, track
from pickwise_pipeline.settings import PipelineSettings

METRICS = ("ndcg@10", "recall@50", "mrr@10")
MODES = ("bm25", "dense", "hybrid")


def load_queries(path: Path) -> list[dict[str, Any]]:
    queries = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not {"qid", "query", "judgments"} <= row.keys():
                raise ValueError(f"{path}:{n}: a query line needs qid, query and judgments")
            queries.append(row)
    return queries


def group_qrels(judgments: dict[str, int], group_of: dict[str, str]) -> dict[str, int]:
    """Item judgments → group judgments (the best grade among a group's members)."""
    out: dict[str, int] = {}
    for item_id, grade in judgments.items():
        group = group_of.get(item_id, item_id)
        out[group] = max(out.get(group, 0), int(grade))
    return out


def group_run(ranked_item_ids: list[str], group_of: dict[str, str]) -> dict[str, float]:
    """Ranked ids → {group: score}, first occurrence wins, scores strictly decreasing."""
    out: dict[str, float] = {}
    for item_id in ranked_item_ids:
        group = group_of.get(item_id, item_id)
        if group not in out:
            out[group] = float(len(ranked_item_ids) - len(out))
    return out


def _ndcg_at(ranked: list[str], grades: dict[str, int], k: int) -> float:
    """Järvelin–Kekäläinen NDCG: the grade itself is the gain (as ranx computes it)."""
    dcg = sum(grades.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def _recall_at(ranked: list[str], grades: dict[str, int], k: int) -> float:
    return sum(1 for doc in ranked[:k] if doc in grades) / len(grades)


def _mrr_at(ranked: list[str], grades: dict[str, int], k: int) -> float:
    return next((1.0 / (rank + 1) for rank, doc in enumerate(ranked[:k]) if doc in grades), 0.0)


def score(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    """NDCG@10, Recall@50, MRR@10, averaged over the queries of ``qrels`` that have a relevant item (the
    definitions of ranx, computed directly: ranx's numba kernels cost ~40 s of compilation in a fresh
    environment for a few hundred sums)."""
    qrels = {q: {d: g for d, g in docs.items() if g > 0} for q, docs in qrels.items()}
    qrels = {q: docs for q, docs in qrels.items() if docs}
    if not qrels:
        return {m: 0.0 for m in METRICS}
    totals = dict.fromkeys(METRICS, 0.0)
    for qid, grades in qrels.items():
        docs = run.get(qid) or {}
        ranked = [doc for doc, _ in sorted(docs.items(), key=lambda kv: -kv[1])]  # stable: ties keep run order
        totals["ndcg@10"] += _ndcg_at(ranked, grades, 10)
        totals["recall@50"] += _recall_at(ranked, grades, 50)
        totals["mrr@10"] += _mrr_at(ranked, grades, 10)
    return {m: round(totals[m] / len(qrels), 4) for m in METRICS}


def constraint_precision(results: list[list[dict[str, bool]]], k: int = 10) -> float:
    """Share of the top-k results (over all queries) for which every parsed constraint holds."""
    shown = [sat for per_query in results for sat in per_query[:k]]
    if not shown:
        return 0.0
    return round(sum(1 for sat in shown if all(sat.values())) / len(shown), 4)


def _item_satisfies(item: dict[str, Any], parsed: dict[str, Any]) -> dict[str, bool]:
    """For the gateway, whose items carry no ``satisfies``: check the fields it returns."""
    out: dict[str, bool] = {}
    for key, field, op in (("price_min_inr", "price_inr", "ge"), ("price_max_inr", "price_inr", "le"),
                           ("ram_gb_min", "ram_gb", "ge"), ("ram_gb_max", "ram_gb", "le"),
                           ("storage_gb_min", "storage_gb", "ge"), ("storage_gb_max", "storage_gb", "le"),
                           ("rating_min", "rating", "ge"), ("discount_pct_min", "discount_pct", "ge")):
        bound = parsed.get(key)
        if bound is None:
            continue
        value = item.get(field)
        out[key] = value is not None and (value >= bound if op == "ge" else value <= bound)
    if parsed.get("brands"):
        out["brands"] = str(item.get("brand", "")).lower() in {b.lower() for b in parsed["brands"]}
    if parsed.get("price_bands"):
        out["price_bands"] = item.get("price_band") in parsed["price_bands"]
    return out


class Target:
    def __init__(self, kind: str, timeout_s: float = 30.0, *, fusion: str | None = None,
                 alpha: float | None = None) -> None:
        self.kind = kind
        self.options: dict[str, Any] = {k: v for k, v in (("fusion", fusion), ("alpha", alpha)) if v is not None}
        self.gateway: Client | None = None
        if kind == "retriever":  # an internal API: plain httpx, pickwise-client speaks only the public one
            url = os.environ.get("PICKWISE_RETRIEVER_URL", "http://127.0.0.1:8001")
            self.client = httpx.Client(base_url=url, timeout=timeout_s)
        else:
            url = os.environ.get("PICKWISE_GATEWAY_URL", "http://127.0.0.1:8000")
            keys = [k.strip() for k in os.environ.get("PICKWISE_API_KEYS", "dev-local-key").split(",") if k.strip()]
            self.gateway = Client(url, api_key=keys[0], timeout_s=timeout_s)

    def search(self, query: str, mode: str, k: int) -> tuple[list[str], list[dict[str, bool]]]:
        """Ranked item ids (each candidate followed by nothing: groups are mapped later) and satisfies."""
        if self.kind == "retriever":
            response = self.client.post("/v1/retrieve", json={"query": query, "mode": mode, "k": k, **self.options})
            response.raise_for_status()
            candidates = response.json()["candidates"]
            return [c["item"]["item_id"] for c in candidates], [c.get("satisfies") or {} for c in candidates]
        assert self.gateway is not None
        body = self.gateway.recommendations(query, k=min(k, 50), generate=False)
        parsed = body.parsed.model_dump()
        return [i.item_id for i in body.items], [_item_satisfies(i.model_dump(), parsed) for i in body.items]


def run_mode(target: Target, queries: list[dict[str, Any]], mode: str,
             group_of: dict[str, str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The mode's figures over all queries, and the same figures per query ``kind`` (``unlabelled`` when a
    query line has none)."""
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    satisfied: dict[str, list[dict[str, bool]]] = {}
    for q in track(queries, f"evaluate {target.kind} {mode}", unit="queries"):
        ids, sats = target.search(q["query"], mode, 50)
        qrels[q["qid"]] = group_qrels(q["judgments"], group_of)
        run[q["qid"]] = group_run(ids, group_of)
        satisfied[q["qid"]] = sats
    figures = score(qrels, run)
    figures["constraint_precision@10"] = constraint_precision(list(satisfied.values()))
    return figures, by_kind(queries, qrels, run, satisfied)


def by_kind(queries: list[dict[str, Any]], qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
            satisfied: dict[str, list[dict[str, bool]]]) -> dict[str, dict[str, Any]]:
    """Figures per query kind: ``{kind: {"queries": n, "ndcg@10": ..., ...}}``, kinds sorted by name."""
    qids_of: dict[str, list[str]] = {}
    for q in queries:
        qids_of.setdefault(str(q.get("kind") or "unlabelled"), []).append(q["qid"])
    out: dict[str, dict[str, Any]] = {}
    for kind, qids in sorted(qids_of.items()):
        figures: dict[str, Any] = {"queries": len(qids)}
        judged = {q: qrels[q] for q in qids if any(g > 0 for g in qrels[q].values())}
        if judged:
            figures.update(score(judged, {q: run[q] for q in judged}))
        figures["constraint_precision@10"] = constraint_precision([satisfied[q] for q in qids])
        out[kind] = figures
    return out


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def catalog_groups(path: Path, mapping: ColumnMapping) -> dict[str, str]:
    return {item.item_id: item.group_id for item in normalise(read_rows(path), mapping).items}


def run(args: argparse.Namespace) -> int:
    settings = PipelineSettings()
    queries = load_queries(Path(args.queries))
    catalog = Path(args.catalog) if args.catalog else settings.resolved_catalog_path()
    mapping = ColumnMapping.from_file(Path(args.mapping)) if args.mapping else FLIPKART
    group_of = catalog_groups(catalog, mapping) if args.group_variants else {}
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.target == "gateway":
        modes = ["gateway"]
    unknown = [m for m in modes if m not in (*MODES, "gateway")]
    if unknown:
        print(f"unknown mode(s): {', '.join(unknown)} (choose from {', '.join(MODES)})", file=sys.stderr)
        return 2
    target = Target(args.target, fusion=args.fusion, alpha=args.alpha)
    results: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, dict[str, Any]]] = {}
    started = time.perf_counter()
    for mode in modes:
        figures, kinds[mode] = run_mode(target, queries, mode, group_of)
        results[mode] = figures
        print(f"{mode:8s} " + "  ".join(f"{k}={v:.4f}" for k, v in figures.items()), flush=True)
    seconds = time.perf_counter() - started
    if args.out:
        write_report(Path(args.out), {
            "kind": "evaluation", "target": args.target, "queries_file": str(args.queries),
            "queries": len(queries), "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 1), "options": target.options, "modes": results, "by_kind": kinds})
    print(summary_line(f"evaluate {args.target}", len(queries) * len(modes), seconds), file=sys.stderr)
    if len(results) == 1:
        print(json.dumps({"queries": len(queries), **next(iter(results.values()))}))
    else:
        print(json.dumps({"queries": len(queries), **results}))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate", help="NDCG@10, Recall@50, MRR@10, constraint precision")
    parser.add_argument("--queries", required=True, help="JSONL: {qid, query, judgments: {item_id: grade}}")
    parser.add_argument("--target", choices=("retriever", "gateway"), default="retriever")
    parser.add_argument("--modes", default="bm25,dense,hybrid", help="comma list of bm25, dense, hybrid")
    parser.add_argument("--fusion", choices=("weighted", "rrf"), help="retriever fusion (default: the service's)")
    parser.add_argument("--alpha", type=float, help="BM25 weight of weighted fusion (default: the service's 0.3)")
    parser.add_argument("--catalog", help="catalog file, to map item ids to variant groups")
    parser.add_argument("--mapping", help="JSON column mapping of that catalog")
    parser.add_argument("--no-group-variants", dest="group_variants", action="store_false",
                        help="judge single items instead of variant groups")
    parser.add_argument("--out", help="also write the figures, per mode and per query kind, to this JSON file "
                                      "(make eval: .pickwise/reports/eval-<target>.json, read by make report)")
    parser.set_defaults(func=run)
