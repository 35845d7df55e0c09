"""train-cf: a catalog's collaborative-filtering model from its event log (decision 0809).

Implicit-feedback ALS (``implicit``, CPU) on the user x item matrix of history weights (``cf.event_cf_weight``,
the same numbers the Redis history hash holds at serving time) with BM25 confidence weighting; item-item
neighbours from the factors; bought-together pairs over invoice baskets (lift and NPMI, minimum support);
recency-weighted popularity overall and per category; repeat-purchase rates. Saved as a versioned artifact
(``cf.save``) that the retriever picks up by itself. ``train`` is pure (events in, model out), so the offline
evaluation trains the same way from the CSV.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from pickwise_common import cf
from pickwise_common import postgres as pg
from pickwise_common.catalogs import UnknownCatalog, catalog_spec
from pickwise_common.errors import DependencyUnavailable
from pickwise_pipeline.interactions import _date
from pickwise_pipeline.settings import PipelineSettings


class Interaction(NamedTuple):
    user_id: str
    item_id: str
    type: str
    quantity: int | None
    invoice: str | None
    ts: datetime


@dataclass(frozen=True)
class TrainParams:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    random_state: int = 42
    similar_k: int = 50
    together_k: int = 20
    together_min_support: int = 5
    popularity_half_life_days: float = 14.0
    popularity_top: int = 500
    category_top: int = 100
    blend: cf.BlendWeights = field(default_factory=cf.BlendWeights)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "blend"}
        out["blend"] = self.blend.as_dict()
        return out


@dataclass
class Matrix:
    users: list[str]
    items: list[str]
    weights: sp.csr_matrix            # users x items, summed history weights

    @property
    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.users)}


def history_matrix(interactions: Sequence[Interaction]) -> Matrix:
    """users x items of summed ``cf.event_cf_weight`` (the serving-time history hash, as a matrix). Users and
    items are in id order, so the model (ALS's seeded initialisation included) does not depend on the order the
    events arrive in: the event log and the CSV give the same factors."""
    weighted = [(e.user_id, e.item_id, cf.event_cf_weight(e.type, e.quantity)) for e in interactions]
    weighted = [t for t in weighted if t[2] > 0]
    users = {u: n for n, u in enumerate(sorted({t[0] for t in weighted}))}
    items = {i: n for n, i in enumerate(sorted({t[1] for t in weighted}))}
    rows = [users[t[0]] for t in weighted]
    cols = [items[t[1]] for t in weighted]
    vals = [t[2] for t in weighted]
    m = sp.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
    m.sum_duplicates()
    return Matrix(list(users), list(items), m)


def bm25_stats(weights: sp.csr_matrix) -> tuple[np.ndarray, float]:
    """(idf per item, average row length) exactly as ``implicit.nearest_neighbours.bm25_weight`` computes them."""
    coo = weights.tocoo()
    n = float(weights.shape[0])
    idf = np.log(n) - np.log1p(np.bincount(coo.col, minlength=weights.shape[1]))
    return idf.astype(np.float32), float(np.ravel(weights.sum(axis=1)).mean())


def fit_als(matrix: Matrix, params: TrainParams) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """(user factors, item factors, the BM25-weighted matrix ALS saw)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import bm25_weight
    from threadpoolctl import threadpool_limits

    weighted = bm25_weight(matrix.weights, K1=params.bm25_k1, B=params.bm25_b).tocsr().astype(np.float32)
    # implicit parallelises itself; a threaded BLAS under it only contends (implicit warns about it)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=params.factors, regularization=params.regularization,
                                        alpha=params.alpha, iterations=params.iterations,
                                        random_state=params.random_state, calculate_training_loss=False)
        model.fit(weighted, show_progress=False)
    return np.asarray(model.user_factors), np.asarray(model.item_factors), weighted


def similar_from_factors(items: Sequence[str], factors: np.ndarray, k: int) -> dict[str, list[tuple[str, float]]]:
    """Top-k cosine neighbours of every item (itself excluded)."""
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    unit = factors / np.maximum(norms, 1e-9)
    out: dict[str, list[tuple[str, float]]] = {}
    k = min(k, len(items) - 1)
    if k <= 0:
        return out
    for start in range(0, len(items), 1024):
        block = unit[start:start + 1024] @ unit.T
        for row in range(block.shape[0]):
            block[row, start + row] = -np.inf
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        for row in range(block.shape[0]):
            idx = top[row][np.argsort(-block[row, top[row]], kind="stable")]
            out[items[start + row]] = [(items[j], round(float(block[row, j]), 5)) for j in idx]
    return out


def bought_together(baskets: Mapping[str, set[str]], k: int,
                    min_support: int) -> dict[str, list[tuple[str, float, float, int]]]:
    """Per item, the items in the same baskets at least ``min_support`` times: (item, lift, npmi, support),
    best NPMI first (lift alone favours rare pairs). p(i) = baskets with i / baskets."""
    items = sorted({i for b in baskets.values() for i in b})
    index = {item: j for j, item in enumerate(items)}
    rows, cols = [], []
    for b, basket in enumerate(baskets.values()):
        for item in basket:
            rows.append(b)
            cols.append(index[item])
    n = len(baskets)
    if n == 0:
        return {}
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, len(items)))
    co = (m.T @ m).tocoo()
    support = np.asarray(m.sum(axis=0)).ravel()
    keep = (co.row != co.col) & (co.data >= min_support)
    r, c, d = co.row[keep], co.col[keep], co.data[keep].astype(np.float64)
    p_ij = d / n
    p_i, p_j = support[r] / n, support[c] / n
    lift = p_ij / (p_i * p_j)
    npmi = np.where(p_ij < 1.0, np.log(lift) / -np.log(np.minimum(p_ij, 1 - 1e-12)), 1.0)
    # best NPMI first within each item (ties by the other item's id), then the first k of each item
    order = np.lexsort((c, -npmi, r))
    r, c, lift, npmi, d = r[order], c[order], lift[order], npmi[order], d[order]
    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    rank = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)]))
    keep = rank < k
    out: dict[str, list[tuple[str, float, float, int]]] = defaultdict(list)
    for a, b, li, np_, sup in zip(r[keep].tolist(), c[keep].tolist(), lift[keep].tolist(), npmi[keep].tolist(),
                                  d[keep].tolist(), strict=True):
        out[items[a]].append((items[b], round(li, 4), round(np_, 5), int(sup)))
    return dict(out)


def popularity(interactions: Sequence[Interaction], until: datetime, half_life_days: float,
               categories: Mapping[str, str], top: int,
               category_top: int) -> tuple[list[tuple[str, float]], dict[str, list[tuple[str, float]]]]:
    """Recency-weighted popularity: each customer counts once per item, with a vote that halves every
    ``half_life_days`` between their latest event on the item and ``until`` (a wholesaler's quantities do not
    outvote other customers); overall and per category."""
    latest: dict[tuple[str, str], datetime] = {}
    for e in interactions:
        key = (e.user_id, e.item_id)
        if key not in latest or e.ts > latest[key]:
            latest[key] = e.ts
    score: Counter[str] = Counter()
    for (_user, item), ts in latest.items():
        age_days = max((until - ts).total_seconds() / 86400.0, 0.0)
        score[item] += 0.5 ** (age_days / half_life_days)
    ranked = [(item, round(s, 5)) for item, s in sorted(score.items(), key=lambda p: (-p[1], p[0]))]
    by_category: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for item, s in ranked:
        category = categories.get(item)
        if category and len(by_category[category]) < category_top:
            by_category[category].append((item, s))
    return ranked[:top], dict(by_category)


def repeat_stats(interactions: Sequence[Interaction]) -> tuple[dict[str, float], dict[str, Any]]:
    """(item -> share of its buyers who bought it on two or more invoices, overall repeat statistics)."""
    invoices: dict[tuple[str, str], set[str]] = defaultdict(set)
    lines = repeats = 0
    for e in sorted((e for e in interactions if e.type == "purchase"), key=lambda e: e.ts):
        key = (e.user_id, e.item_id)
        seen = invoices[key]
        invoice = e.invoice or e.ts.isoformat()
        if seen and invoice not in seen:
            repeats += 1
        lines += 1
        seen.add(invoice)
    buyers: Counter[str] = Counter()
    rebuyers: Counter[str] = Counter()
    for (_user, item), inv in invoices.items():
        buyers[item] += 1
        if len(inv) >= 2:
            rebuyers[item] += 1
    rate = {item: round(rebuyers[item] / n, 4) for item, n in buyers.items() if n >= 3}
    pairs = len(invoices)
    stats = {"purchase_lines": lines, "repeat_lines": repeats,
             "repeat_line_share": round(repeats / lines, 4) if lines else 0.0,
             "pairs": pairs, "repeated_pairs": sum(1 for inv in invoices.values() if len(inv) >= 2),
             "repeated_pair_share": round(sum(1 for inv in invoices.values() if len(inv) >= 2) / pairs, 4)
             if pairs else 0.0}
    return rate, stats


def train(interactions: Sequence[Interaction], catalog: str, *, params: TrainParams | None = None,
          categories: Mapping[str, str] | None = None, window: Mapping[str, str | None] | None = None,
          now: datetime | None = None) -> cf.CfModel:
    """The whole model from a catalog's interactions (pure apart from the clock)."""
    params = params or TrainParams()
    categories = categories or {}
    now = now or datetime.now(UTC)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    matrix = history_matrix(interactions)
    if not matrix.users:
        raise ValueError(f"catalog {catalog!r} has no purchase, click or add_to_cart events in the window")
    idf, average_length = bm25_stats(matrix.weights)
    timings["matrix_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    _user_factors, item_factors, _weighted = fit_als(matrix, params)
    timings["als_s"] = time.perf_counter() - t
    t = time.perf_counter()
    similar = similar_from_factors(matrix.items, item_factors, params.similar_k)
    timings["similar_s"] = time.perf_counter() - t
    t = time.perf_counter()
    baskets: dict[str, set[str]] = defaultdict(set)
    for e in interactions:
        if e.type == "purchase" and e.invoice:
            baskets[e.invoice].add(e.item_id)
    together = bought_together(baskets, params.together_k, params.together_min_support)
    timings["bought_together_s"] = time.perf_counter() - t
    t = time.perf_counter()
    last = max(e.ts for e in interactions)
    popular, by_category = popularity(interactions, last, params.popularity_half_life_days, categories,
                                      params.popularity_top, params.category_top)
    rate, repeat = repeat_stats(interactions)
    timings["popularity_repeat_s"] = time.perf_counter() - t
    first = min(e.ts for e in interactions)
    metrics = {"users": len(matrix.users), "items": len(matrix.items), "nonzeros": int(matrix.weights.nnz),
               "events": len(interactions), "baskets": len(baskets),
               "items_with_bought_together": len(together),
               "first_event": first.isoformat(), "last_event": last.isoformat(),
               **{k: round(v, 3) for k, v in timings.items()}}
    return cf.CfModel(
        version=cf.new_version(now), catalog=catalog, trained_at=now.isoformat(),
        window=dict(window or {"from": first.date().isoformat(), "until": last.date().isoformat()}),
        item_ids=matrix.items, item_factors=item_factors, regularization=params.regularization,
        alpha=params.alpha, metrics=metrics, params=params.as_dict(), item_idf=idf, bm25_k1=params.bm25_k1,
        bm25_b=params.bm25_b, bm25_average_length=average_length, similar=similar, bought_together=together,
        popularity=popular, popularity_by_category=by_category,
        item_category={i: categories[i] for i in matrix.items if i in categories}, item_repeat_rate=rate,
        repeat=repeat, blend_weights=params.blend)


# ---- the event log -------------------------------------------------------------------------------------------

async def load_interactions(settings: PipelineSettings, catalog: str, date_from: str | None,
                            date_until: str | None) -> tuple[list[Interaction], dict[str, str]]:
    """The catalog's purchase/click/add_to_cart events in the window, and its items' categories."""
    lower = datetime.fromisoformat(date_from).replace(tzinfo=UTC) if date_from else datetime(1970, 1, 1, tzinfo=UTC)
    upper = (datetime.fromisoformat(date_until).replace(tzinfo=UTC) + timedelta(days=1)) if date_until else \
        datetime(9999, 1, 1, tzinfo=UTC)
    pool = await pg.create_pool(settings, migrate=True)
    try:
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT user_id, item_id, type, quantity, invoice, ts FROM events "
                "WHERE catalog = $1 AND type = ANY($2::text[]) AND ts >= $3 AND ts < $4",
                catalog, list(cf.CF_EVENT_TYPES), lower, upper)
            cats = await conn.fetch("SELECT item_id, category FROM items WHERE catalog = $1", catalog)
    finally:
        await pool.close()
    interactions = [Interaction(r["user_id"], r["item_id"], r["type"], r["quantity"], r["invoice"], r["ts"])
                    for r in rows]
    return interactions, {r["item_id"]: r["category"] for r in cats if r["category"]}


def run(args: argparse.Namespace) -> int:
    try:
        catalog_spec(args.catalog)
    except UnknownCatalog as exc:
        print(f"--catalog: {exc}", file=sys.stderr)
        return 2
    settings = PipelineSettings()
    started = time.perf_counter()
    interactions, categories = asyncio.run(load_interactions(settings, args.catalog, args.date_from, args.until))
    loaded_s = time.perf_counter() - started
    if not interactions:
        print(f"--catalog {args.catalog}: no purchase, click or add_to_cart events in the window", file=sys.stderr)
        return 1
    params = TrainParams(factors=args.factors, iterations=args.iterations)
    model = train(interactions, args.catalog, params=params, categories=categories,
                  window={"from": args.date_from, "until": args.until})
    model.metrics["load_s"] = round(loaded_s, 3)
    root = Path(args.models_dir) if args.models_dir else settings.models_dir
    directory = cf.save(model, root)
    # the model registry and its offline gate (decision 1003): validation on the window's last days, then register
    from pickwise_pipeline import model_registry

    registry = model_registry.registry_from(getattr(args, "registry_uri", None))
    gate = None
    if registry is not None:
        validation = model_registry.cf_validation(interactions, args.catalog, params=params, categories=categories,
                                                  holdout_days=getattr(args, "holdout_days", 14))
        try:
            gate = model_registry.publish_cf(model, directory, validation, registry=registry,
                                             min_gain=getattr(args, "min_gain", 0.001),
                                             postgres_url=settings.postgres_url.get_secret_value())
        except DependencyUnavailable as exc:  # the model directory is written: served without a registry
            print(f"train-cf: not registered: {exc}", file=sys.stderr, flush=True)
            gate = {"action": model_registry.UNREGISTERED, "reason": str(exc)}
    total_s = time.perf_counter() - started
    print(json.dumps({"catalog": args.catalog, "version": model.version, "path": str(directory),
                      "window": model.window, "metrics": model.metrics, "gate": gate, "seconds": round(total_s, 2)}))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train-cf",
                                   help="ALS + neighbours + bought-together + popularity from the event log")
    parser.add_argument("--catalog", default="retail")
    parser.add_argument("--from", dest="date_from", type=_date, default=None, help="first day, YYYY-MM-DD")
    parser.add_argument("--until", type=_date, default=None, help="last day (inclusive), YYYY-MM-DD")
    parser.add_argument("--factors", type=int, default=TrainParams.factors)
    parser.add_argument("--iterations", type=int, default=TrainParams.iterations)
    parser.add_argument("--models-dir", default=None, help="default: PICKWISE_MODELS_DIR (.pickwise/models)")
    parser.add_argument("--registry-uri", default=None,
                        help="model registry (default: $PICKWISE_MLFLOW_TRACKING_URI; none: no registration)")
    parser.add_argument("--holdout-days", type=int, default=14,
                        help="the window's last days held out to validate the recipe for the registry's gate")
    parser.add_argument("--min-gain", type=float, default=0.001,
                        help="validation NDCG@10 gain over the champion a new version needs (decision 1003)")
    parser.set_defaults(func=run)

