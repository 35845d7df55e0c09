"""evaluate-cf: the feed on the retail data's temporal split, against baselines (decisions 0810, 0811).

Offline (default): events are built from the CSV by the import's own code (``interactions.build_events``),
the model by train-cf's own ``train``, the feed by ``CfModel.recommend`` (the served ``cf.blend``). Train =
lines up to 2011-10-31, test = 2011-11-01 .. 2011-12-09; evaluated users = customers with purchases in both
(returning) plus, separately, test customers never seen in train (new: cold start). Relevant = the distinct
items a customer bought in the test period. The blend's weights are tuned on a validation split carved from
the train window only (train <= 2011-09-30, validate October), never on the test period.

``--target gateway`` asks the public API instead: ``GET /v1/users/{id}/recommendations?catalog=retail&k=20``
for every test customer (the stack must hold the train window's import and a model trained on it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from pickwise_common import cf
from pickwise_pipeline.interactions import (
    Lines,
    PurchaseEvent,
    build_events,
    default_source,
    lines_from_rows,
    read_lines,
)
from pickwise_pipeline.train_cf import Interaction, TrainParams, train

TRAIN_UNTIL = "2011-10-31"
TEST_FROM, TEST_UNTIL = "2011-11-01", "2011-12-09"
VALIDATION_TRAIN_UNTIL = "2011-09-30"
VALIDATION_FROM, VALIDATION_UNTIL = "2011-10-01", "2011-10-31"
K = 20
METHODS = ("global_popularity", "popularity_30d", "repeat_then_popularity", "als", "pickwise_blend")

Recommender = Callable[[str, Mapping[str, float]], list[str]]


# ---- metrics (pure) --------------------------------------------------------------------------------------------

def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant) / len(relevant)


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary relevance; the ideal list puts min(|relevant|, k) hits first."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return dcg / ideal


def hit_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return 1.0 if set(ranked[:k]) & relevant else 0.0


def coverage(lists: Iterable[Sequence[str]], catalog_size: int, k: int) -> float:
    """Share of the catalog's items that appear in at least one top-k list."""
    shown = {item for ranked in lists for item in ranked[:k]}
    return len(shown) / catalog_size if catalog_size else 0.0


def novelty(lists: Iterable[Sequence[str]], buyer_share: Mapping[str, float], k: int) -> float:
    """Mean self-information -log2(share of train customers who bought the item) of the recommended items;
    an item nobody bought counts as bought by one customer less than the rarest."""
    floor = min(buyer_share.values(), default=1.0) / 2
    values = [-math.log2(buyer_share.get(item, floor)) for ranked in lists for item in ranked[:k]]
    return statistics.fmean(values) if values else 0.0


def score_lists(lists: Mapping[str, Sequence[str]], relevant: Mapping[str, set[str]], k: int, catalog_size: int,
                buyer_share: Mapping[str, float]) -> dict[str, float]:
    users = [u for u in lists if relevant.get(u)]
    if not users:
        return {"users": 0}
    return {"users": len(users),
            "recall": round(statistics.fmean(recall_at_k(lists[u], relevant[u], k) for u in users), 4),
            "ndcg": round(statistics.fmean(ndcg_at_k(lists[u], relevant[u], k) for u in users), 4),
            "hit_rate": round(statistics.fmean(hit_at_k(lists[u], relevant[u], k) for u in users), 4),
            "coverage": round(coverage((lists[u] for u in users), catalog_size, k), 4),
            "novelty": round(novelty((lists[u] for u in users), buyer_share, k), 3)}


# ---- the split -------------------------------------------------------------------------------------------------

def interactions_of(events: Iterable[PurchaseEvent]) -> list[Interaction]:
    return [Interaction(e.user_id, e.item_id, "purchase", e.quantity, e.invoice, e.ts) for e in events]


@dataclass
class Split:
    train: list[Interaction]
    relevant: dict[str, set[str]]             # test customer -> distinct items bought in the test period
    history: dict[str, dict[str, float]]      # train customer -> item -> history weight (the Redis hash)
    invoices: Counter[str]                    # train customer -> invoices

    @property
    def returning(self) -> list[str]:
        return sorted(u for u in self.relevant if u in self.history)

    @property
    def new(self) -> list[str]:
        return sorted(u for u in self.relevant if u not in self.history)


def make_split(rows: Lines | Sequence[list[str]], train_until: str, test_from: str, test_until: str) -> Split:
    """Train events up to ``train_until`` and test purchases in [test_from, test_until], each built by the import's
    rules from the lines of its own period (a cancellation never reaches across the split)."""
    if not isinstance(rows, Lines):
        rows = lines_from_rows(rows)
    train_table, _ = build_events(rows, date_until=train_until)
    test_table, _ = build_events(rows, date_from=test_from, date_until=test_until)
    train_events, test_events = train_table.events(), test_table.events()
    relevant: dict[str, set[str]] = defaultdict(set)
    for e in test_events:
        relevant[e.user_id].add(e.item_id)
    history: dict[str, dict[str, float]] = defaultdict(dict)
    invoices: dict[str, set[str]] = defaultdict(set)
    for e in train_events:
        h = history[e.user_id]
        h[e.item_id] = h.get(e.item_id, 0.0) + cf.event_cf_weight("purchase", e.quantity)
        invoices[e.user_id].add(e.invoice)
    return Split(interactions_of(train_events), dict(relevant), dict(history),
                 Counter({u: len(v) for u, v in invoices.items()}))


def segments(split: Split) -> dict[str, list[str]]:
    """Returning customers split at the median number of train invoices (heavy >= median), and new customers."""
    returning = split.returning
    median = statistics.median(split.invoices[u] for u in returning) if returning else 0
    return {"returning": returning,
            "heavy": [u for u in returning if split.invoices[u] >= median],
            "light": [u for u in returning if split.invoices[u] < median],
            "new": split.new}


# ---- recommenders --------------------------------------------------------------------------------------------

def popularity_ranking(train: Sequence[Interaction], since: datetime | None = None) -> list[str]:
    """Items by the number of distinct customers who bought them (since ``since`` when given)."""
    buyers: dict[str, set[str]] = defaultdict(set)
    for e in train:
        if since is None or e.ts >= since:
            buyers[e.item_id].add(e.user_id)
    return [item for item, _ in sorted(buyers.items(), key=lambda p: (-len(p[1]), p[0]))]


def recommenders(model: cf.CfModel, train: Sequence[Interaction], k: int) -> dict[str, Recommender]:
    last = max(e.ts for e in train)
    global_pop = popularity_ranking(train)
    recent_pop = popularity_ranking(train, last - timedelta(days=30))

    def fill(first: list[str], fallback: list[str]) -> list[str]:
        out = list(dict.fromkeys(first))[:k]
        seen = set(out)
        for item in fallback:
            if len(out) >= k:
                break
            if item not in seen:
                out.append(item)
                seen.add(item)
        return out

    def repeat_then_popularity(_user: str, history: Mapping[str, float]) -> list[str]:
        mine = [i for i, _ in sorted(history.items(), key=lambda p: (-p[1], p[0]))]
        return fill(mine, recent_pop)

    return {
        "global_popularity": lambda _u, _h: global_pop[:k],
        "popularity_30d": lambda _u, _h: recent_pop[:k],
        "repeat_then_popularity": repeat_then_popularity,
        "als": lambda _u, h: [i for i, _ in model.als_scores(h, k)],
        "pickwise_blend": lambda _u, h: [i for i, _ in model.recommend(h, k)],
    }


def buyer_shares(train: Sequence[Interaction]) -> dict[str, float]:
    buyers: dict[str, set[str]] = defaultdict(set)
    for e in train:
        buyers[e.item_id].add(e.user_id)
    n_users = len({e.user_id for e in train}) or 1
    return {item: len(users) / n_users for item, users in buyers.items()}


def evaluate_lists(lists_by_method: Mapping[str, Mapping[str, Sequence[str]]], split: Split, k: int,
                   catalog_size: int) -> dict[str, dict[str, dict[str, float]]]:
    share = buyer_shares(split.train)
    segs = segments(split)
    return {method: {seg: score_lists({u: lists[u] for u in users if u in lists}, split.relevant, k,
                                      catalog_size, share) for seg, users in segs.items()}
            for method, lists in lists_by_method.items()}


# ---- tuning on validation ------------------------------------------------------------------------------------

@dataclass
class _Precomputed:
    history: dict[str, float]
    als: dict[str, float]
    together: dict[str, float]


GRID: dict[str, tuple[float, ...]] = {
    "als": (0.0, 0.1, 0.2, 0.35, 0.5, 0.6, 0.75, 0.9, 1.0, 1.25),
    "popularity": (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.5),
    "bought_together": (0.0, 0.02, 0.05, 0.1, 0.2, 0.35),
    "repeat_rate_power": (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5),
    "history_power": (0.25, 0.5, 0.6, 0.75, 0.9, 1.0, 1.5),
}


def tune_blend(model: cf.CfModel, split: Split, k: int, rounds: int = 3) -> tuple[cf.BlendWeights, list[dict]]:
    """Coordinate search over ``GRID`` maximising Recall@k + NDCG@k (the issue's two targets) on the validation
    split; returns the best weights and the trace. Each user's ALS candidates and bought-together scores are
    computed once."""
    start = model.blend_weights
    users = split.returning
    pre = {u: _Precomputed(split.history[u], dict(model.als_scores(split.history[u], start.candidates)),
                           model.bought_together_scores(split.history[u])) for u in users}
    popular = dict(model.popularity[: start.candidates])

    def objective(weights: cf.BlendWeights) -> float:
        total = 0.0
        for u in users:
            p = pre[u]
            ranked = [s.item_id for s in cf.blend(p.history, p.als, popular, weights, k,
                                                  repeat_rate=model.item_repeat_rate, bought_together=p.together)]
            total += ndcg_at_k(ranked, split.relevant[u], k) + recall_at_k(ranked, split.relevant[u], k)
        return total / len(users)

    best = start
    best_score = objective(best)
    trace = [{"weights": best.as_dict(), "recall_plus_ndcg": round(best_score, 4)}]
    for _ in range(rounds):
        improved = False
        for name, values in GRID.items():
            for value in values:
                candidate = replace(best, **{name: value})
                if candidate == best:
                    continue
                score = objective(candidate)
                trace.append({"weights": candidate.as_dict(), "recall_plus_ndcg": round(score, 4)})
                if score > best_score + 1e-5:
                    best, best_score, improved = candidate, score, True
        if not improved:
            break
    return best, trace


# ---- runs ------------------------------------------------------------------------------------------------------

def run_offline(source: Path, k: int, params: TrainParams, tune: bool) -> dict[str, Any]:
    started = time.perf_counter()
    rows = read_lines(source)
    categories: dict[str, str] = {}
    tuning: dict[str, Any] = {"split": {"train_until": VALIDATION_TRAIN_UNTIL,
                                        "validate": [VALIDATION_FROM, VALIDATION_UNTIL]}}
    weights = params.blend
    if tune:
        validation = make_split(rows, VALIDATION_TRAIN_UNTIL, VALIDATION_FROM, VALIDATION_UNTIL)
        v_model = train(validation.train, "retail", params=params, categories=categories)
        weights, trace = tune_blend(v_model, validation, k)
        tuning |= {"start": params.blend.as_dict(), "best": weights.as_dict(), "objective": "recall@k + ndcg@k",
                   "validation_start": trace[0]["recall_plus_ndcg"],
                   "validation_best": max(t["recall_plus_ndcg"] for t in trace), "evaluated": len(trace),
                   "validation_users": len(validation.returning)}
    split = make_split(rows, TRAIN_UNTIL, TEST_FROM, TEST_UNTIL)
    t = time.perf_counter()
    model = train(split.train, "retail", params=replace(params, blend=weights), categories=categories)
    train_s = time.perf_counter() - t
    recs = recommenders(model, split.train, k)
    users = split.returning + split.new
    lists = {name: {u: rec(u, split.history.get(u, {})) for u in users} for name, rec in recs.items()}
    results = evaluate_lists(lists, split, k, len(model.item_ids))
    test_pairs = [(u, i) for u in split.returning for i in split.relevant[u]]
    repeat_share = sum(1 for u, i in test_pairs if i in split.history[u]) / len(test_pairs) if test_pairs else 0.0
    return {"target": "offline", "k": k, "split": {"train_until": TRAIN_UNTIL, "test": [TEST_FROM, TEST_UNTIL]},
            "customers": {"returning": len(split.returning), "new": len(split.new)},
            "catalog_items": len(model.item_ids),
            "test_repeat_share": round(repeat_share, 4),
            "train_repeat": model.repeat, "blend_weights": weights.as_dict(), "tuning": tuning,
            "train_s": round(train_s, 2), "seconds": round(time.perf_counter() - started, 1), "results": results}


async def gateway_lists(base_url: str, api_key: str, users: Sequence[str], k: int, catalog: str,
                        concurrency: int = 8, timeout_s: float = 10.0) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Each user's feed from the public API; counts the non-200 answers per status."""
    lists: dict[str, list[str]] = {}
    errors: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s,
                                 headers={"X-API-Key": api_key}) as client:
        async def one(user: str) -> None:
            async with gate:
                response = await client.get(f"/v1/users/{user}/recommendations",
                                            params={"catalog": catalog, "k": k})
            if response.status_code != 200:
                errors[str(response.status_code)] += 1
                return
            lists[user] = feed_item_ids(response.json())

        await asyncio.gather(*(one(u) for u in users))
    return lists, dict(errors)


def feed_item_ids(body: Mapping[str, Any]) -> list[str]:
    """Item ids of a recommendations response, in order (``items`` of objects with ``item_id``)."""
    items = body.get("items") or body.get("recommendations") or []
    out = []
    for entry in items:
        if isinstance(entry, str):
            out.append(entry)
        elif isinstance(entry, Mapping):
            item = entry.get("item_id") or (entry.get("item") or {}).get("item_id")
            if item:
                out.append(str(item))
    return out


def run_gateway(source: Path, k: int, base_url: str, api_key: str) -> dict[str, Any]:
    started = time.perf_counter()
    rows = read_lines(source)
    split = make_split(rows, TRAIN_UNTIL, TEST_FROM, TEST_UNTIL)
    users = split.returning + split.new
    lists, errors = asyncio.run(gateway_lists(base_url, api_key, users, k, "retail"))
    catalog_size = len({e.item_id for e in split.train})
    results = evaluate_lists({"gateway_feed": lists}, split, k, catalog_size)
    empty_new = sum(1 for u in split.new if not lists.get(u))
    return {"target": "gateway", "base_url": base_url, "k": k, "customers": {"returning": len(split.returning),
                                                                              "new": len(split.new)},
            "errors": errors, "new_customers_with_empty_feed": empty_new, "catalog_items": catalog_size,
            "seconds": round(time.perf_counter() - started, 1), "results": results}


def table(report: Mapping[str, Any]) -> str:
    """Markdown table of the results: one row per method and segment."""
    lines = ["| method | segment | users | Recall@20 | NDCG@20 | HitRate@20 | coverage | novelty |",
             "|---|---|---|---|---|---|---|---|"]
    for method, segs in report["results"].items():
        for seg, m in segs.items():
            if not m.get("users"):
                continue
            lines.append(f"| {method} | {seg} | {m['users']} | {m['recall']:.3f} | {m['ndcg']:.3f} | "
                         f"{m['hit_rate']:.3f} | {m['coverage']:.3f} | {m['novelty']:.2f} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    source = Path(args.source) if args.source else default_source()
    if not source.is_file():
        print(f"--source: no such file {source}", file=sys.stderr)
        return 2
    if args.target == "gateway":
        if not args.api_key:
            print("--api-key is required with --target gateway", file=sys.stderr)
            return 2
        report = run_gateway(source, args.k, args.base_url, args.api_key)
    else:
        report = run_offline(source, args.k, TrainParams(factors=args.factors), tune=not args.no_tune)
    report["evaluated_at"] = datetime.now(UTC).isoformat()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(table(report))
    print(json.dumps({k: v for k, v in report.items() if k != "results"}))
    return 0


def _default_api_key() -> str:
    keys = [k.strip() for k in os.environ.get("PICKWISE_API_KEYS", "dev-local-key").split(",") if k.strip()]
    return keys[0] if keys and not keys[0].startswith(("{", "[")) else "dev-local-key"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("evaluate-cf", help="the CF feed vs baselines on the retail temporal split")
    parser.add_argument("--target", choices=("offline", "gateway"), default="offline")
    parser.add_argument("--source", default=None, help="CSV(.gz) of invoice lines (default: the repo's retail data)")
    parser.add_argument("--k", type=int, default=K)
    parser.add_argument("--factors", type=int, default=TrainParams.factors)
    parser.add_argument("--no-tune", action="store_true", help="use the committed blend weights as they are")
    parser.add_argument("--base-url", default=os.environ.get("PICKWISE_GATEWAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=_default_api_key(), help="default: the first of PICKWISE_API_KEYS")
    parser.add_argument("--out", default=".pickwise/reports/eval-cf.json")
    parser.set_defaults(func=run)
