"""``pickwise-pipeline train-ranker --from-events``: the reranker's LightGBM LambdaMART learned from what shoppers
did with what they were shown (decision 1004b).

Impressions of search/recommendations (table ``impressions``) are joined to click / add_to_cart / purchase events
by request_id and item_id: label 3 purchase > 2 add_to_cart > 1 click > 0 none. Each impression's query is
re-retrieved through the running retriever exactly as the judgment path does (one call per distinct query), the
features are ``ranking_features.extract_features`` over those candidates and the shown items are its rows.
Position bias is corrected by inverse propensity weights, the propensities estimated from the gateway's RandPair
exploration (``propensity``). Shoppers are split (seeded hash): held-out shoppers are never trained on. Reported
on them: IPW-weighted click NDCG@10 (counterfactual, no truth needed) and, with ``--truth`` (the simulator's
truth.jsonl), NDCG@10 against the TRUE utility, for the click-trained ranker, the judgment-trained one and
retrieval order.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from pickwise_common.ranking_features import FEATURE_NAMES, extract_features
from pickwise_common.schemas import Candidate, Constraints, Item, RetrieveResponse
from pickwise_pipeline import propensity
from pickwise_pipeline.click_model import ClickModel
from pickwise_pipeline.progress import summary_line, track
from pickwise_pipeline.shoppers import Shopper, grade, utility

log = logging.getLogger("pickwise.pipeline.train_ranker_events")

LABELS = {"click": 1, "add_to_cart": 2, "purchase": 3}
TOP_K = 10
EVENTS_METRIC = "heldout_ipw_ndcg_at_10"

IMPRESSIONS_SQL = """
SELECT request_id, user_id, session_id, query, items, explore, model_versions, ts
FROM impressions
WHERE endpoint IN ('search', 'recommendations') AND catalog = $1 AND query IS NOT NULL AND query <> ''
  AND ($2::timestamptz IS NULL OR ts >= $2) AND ($3::timestamptz IS NULL OR ts < $3)
ORDER BY ts, request_id
"""
EVENTS_SQL = """
SELECT request_id, item_id, type FROM events
WHERE request_id = ANY($1::text[]) AND type IN ('click', 'add_to_cart', 'purchase')
"""


@dataclass
class Logged:
    """One impression with what its shopper did: item id -> 0-based position shown, item id -> label."""

    request_id: str
    user_id: str
    query: str
    positions: dict[str, int]
    labels: dict[str, int] = field(default_factory=dict)
    explore: dict[str, int] | None = None


@dataclass
class Group:
    """An impression ready to learn from: the re-retrieved candidates, and for each shown item found among them
    its candidate row, position shown and label."""

    logged: Logged
    candidates: list[Candidate]
    parsed: Constraints
    rows: list[int]
    positions: list[int]
    labels: list[int]

    @property
    def clicked(self) -> bool:
        return any(label > 0 for label in self.labels)


# ---------------------------------------------------------------- pure parts

def join_events(impressions: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]) -> list[Logged]:
    """Impression rows (items = [{item_id, position}, ...]) joined to event rows (request_id, item_id, type) ->
    one ``Logged`` per request_id (a duplicate impression of the same request is ignored); an event whose item was
    not shown by that request is ignored."""
    by_request: dict[str, Logged] = {}
    for row in impressions:
        rid = str(row["request_id"])
        if rid in by_request:
            continue
        items = _json(row["items"]) or []
        positions = {str(i["item_id"]): int(i["position"]) for i in items}
        by_request[rid] = Logged(rid, str(row.get("user_id") or row.get("session_id") or rid), str(row["query"]),
                                 positions, explore=_json(row.get("explore")))
    for event in events:
        logged = by_request.get(str(event["request_id"]))
        item = str(event["item_id"])
        if logged is None or item not in logged.positions:
            continue
        logged.labels[item] = max(logged.labels.get(item, 0), LABELS[str(event["type"])])
    return list(by_request.values())


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def explored_pages(logged: Iterable[Logged]) -> list[propensity.ExploredPage]:
    """The RandPair-explored impressions as the propensity estimator reads them."""
    pages = []
    for entry in logged:
        if not entry.explore or "pair" not in entry.explore:
            continue
        clicked = frozenset(entry.positions[i] for i, label in entry.labels.items() if label >= 1)
        bought = [entry.positions[i] for i, label in entry.labels.items() if label >= LABELS["purchase"]]
        pages.append(propensity.ExploredPage(int(entry.explore["pair"]), clicked, min(bought) if bought else None))
    return pages


def candidate_index(candidates: Sequence[Candidate]) -> dict[str, int]:
    """item id (and each grouped colour variant's id) -> row of its candidate."""
    index: dict[str, int] = {}
    for row, cand in enumerate(candidates):
        for item_id in (cand.item.item_id, *cand.variant_ids):
            index.setdefault(item_id, row)
    return index


def make_group(logged: Logged, candidates: list[Candidate], parsed: Constraints) -> Group:
    index = candidate_index(candidates)
    shown = sorted(logged.positions.items(), key=lambda kv: kv[1])
    found = [(index[item], pos, logged.labels.get(item, 0)) for item, pos in shown if item in index]
    return Group(logged, candidates, parsed, [f[0] for f in found], [f[1] for f in found], [f[2] for f in found])


def heldout_shopper(user_id: str, fraction: float, seed: int) -> bool:
    """A stable, seeded shopper-level split: the same shopper is always on the same side."""
    digest = hashlib.sha256(f"{seed}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < fraction


def dcg(gains: Sequence[float], k: int = TOP_K) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def order_by(scores: Sequence[float]) -> list[int]:
    """Indices by descending score, ties in the given order."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def ipw_ndcg(groups: Sequence[Group], scores: Sequence[Sequence[float]], props: propensity.Propensities,
             clip: float = propensity.PROPENSITY_CLIP, k: int = TOP_K) -> float:
    """Mean IPW-weighted click NDCG@k over the groups with a click: the shown items re-ordered by ``scores`` (one
    per shown row); a clicked item's gain is (2^label - 1) / p(position it was shown at); the ideal orders the
    same weighted gains. An unbiased estimate (up to the propensities) of how a ranking would be clicked."""
    values = []
    for group, s in zip(groups, scores, strict=True):
        if not group.clicked:
            continue
        gains = [(2 ** lab - 1) * propensity.ipw_weight(pos, props, clip) if lab > 0 else 0.0
                 for lab, pos in zip(group.labels, group.positions, strict=True)]
        ideal = dcg(sorted(gains, reverse=True), k)
        values.append(dcg([gains[i] for i in order_by(s)], k) / ideal if ideal > 0 else 0.0)
    return float(np.mean(values)) if values else 0.0


def expected_clicks(candidates: Sequence[Candidate], scores: Sequence[float], shopper: Shopper,
                    items: Mapping[str, Item], model: ClickModel = ClickModel(), k: int = TOP_K) -> float:
    """Clicks the simulator's click model expects on the top k of the candidates ordered by ``scores``:
    sum of examination(position) x attractiveness(true utility) (an offline simulated CTR)."""
    order = order_by(scores)[:k]
    return sum(model.examination(pos) * model.attractiveness(utility(shopper, items.get(candidates[i].item.item_id,
                                                                                       candidates[i].item)))
               for pos, i in enumerate(order))


def true_ndcg(candidates: Sequence[Candidate], scores: Sequence[float], shopper: Shopper,
              items: Mapping[str, Item], k: int = TOP_K) -> float:
    """NDCG@k of the candidates ordered by ``scores`` against the shopper's TRUE utility (gain 2^grade - 1; ideal
    over all the candidates)."""
    grades = [grade(utility(shopper, items.get(c.item.item_id, c.item))) for c in candidates]
    gains = [2.0 ** g - 1 for g in grades]
    ideal = dcg(sorted(gains, reverse=True), k)
    return dcg([gains[i] for i in order_by(scores)], k) / ideal if ideal > 0 else 0.0


def training_matrix(groups: Sequence[Group], props: propensity.Propensities,
                    clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    xs, ys, ws, sizes = [], [], [], []
    for group in groups:
        if not group.clicked or len(group.rows) < 2:
            continue
        features = extract_features(group.candidates, group.parsed)
        xs.extend(features[r] for r in group.rows)
        ys.extend(group.labels)
        ws.extend(propensity.group_weights(group.labels, group.positions, props, clip))
        sizes.append(len(group.rows))
    x = np.asarray(xs, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    return x, np.asarray(ys), np.asarray(ws, dtype=np.float64), sizes


def train(groups: Sequence[Group], props: propensity.Propensities, *, rounds: int, clip: float,
          params: Mapping[str, Any] | None = None) -> Any:
    import lightgbm as lgb

    from pickwise_pipeline.train_ranker import DEFAULT_PARAMS

    x, y, w, sizes = training_matrix(groups, props, clip)
    if not sizes:
        raise ValueError("no impression with a click and at least two shown candidates to learn from")
    data = lgb.Dataset(x, label=y, weight=w, group=sizes, feature_name=list(FEATURE_NAMES), free_raw_data=False)
    return lgb.train(dict(params or DEFAULT_PARAMS), data, num_boost_round=rounds)


Scorer = Callable[[Group], list[float]]


def booster_scorer(booster: Any) -> Callable[[Sequence[Candidate], Constraints], list[float]]:
    """Scores of every candidate by a LightGBM model (its own feature names picked from the current ones)."""
    names = list(booster.feature_name())
    columns = [FEATURE_NAMES.index(n) for n in names]

    def score(candidates: Sequence[Candidate], parsed: Constraints) -> list[float]:
        if not candidates:
            return []
        x = np.asarray(extract_features(candidates, parsed), dtype=np.float64)[:, columns]
        return [float(v) for v in booster.predict(x)]

    return score


def retrieval_scores(candidates: Sequence[Candidate], _parsed: Constraints) -> list[float]:
    return [-float(i) for i in range(len(candidates))]


def shown_scores(groups: Sequence[Group], score: Callable[[Sequence[Candidate], Constraints], list[float]],
                 cache: dict[str, list[float]] | None = None) -> list[list[float]]:
    out = []
    for group in groups:
        key = group.logged.query
        full = cache.get(key) if cache is not None else None
        if full is None:
            full = score(group.candidates, group.parsed)
            if cache is not None:
                cache[key] = full
        out.append([full[r] for r in group.rows])
    return out


# ---------------------------------------------------------------- I/O

async def _load(postgres_url: str, catalog: str, since: datetime | None,
                until: datetime | None) -> tuple[list[Any], list[Any]]:
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        impressions = [dict(r) for r in await conn.fetch(IMPRESSIONS_SQL, catalog, since, until)]
        ids = sorted({str(r["request_id"]) for r in impressions})
        events = [dict(r) for r in await conn.fetch(EVENTS_SQL, ids)] if ids else []
    finally:
        await conn.close()
    return impressions, events


def load_logged(postgres_url: str, catalog: str, since: datetime | None,
                until: datetime | None = None) -> list[Logged]:
    impressions, events = asyncio.run(_load(postgres_url, catalog, since, until))
    return join_events(impressions, events)


def retrieve_all(queries: Iterable[str], retriever_url: str, *, k: int, mode: str, catalog: str,
                 timeout_s: float) -> dict[str, RetrieveResponse]:
    """One retrieve per distinct query, as the judgment path calls it."""
    distinct = sorted(set(queries))
    out: dict[str, RetrieveResponse] = {}
    with httpx.Client(base_url=retriever_url, timeout=timeout_s) as client:
        for query in track(distinct, "train-ranker --from-events: retrieve", unit="queries", summary=False):
            body: dict[str, Any] = {"query": query, "k": k, "mode": mode}
            if catalog != "flipkart":
                body["catalog"] = catalog
            response = client.post("/v1/retrieve", json=body)
            response.raise_for_status()
            out[query] = RetrieveResponse.model_validate(response.json())
    return out


def load_truth(path: Path) -> dict[str, Shopper]:
    """request_id -> the simulated shopper who issued it (the simulator's truth.jsonl)."""
    out: dict[str, Shopper] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        shopper = Shopper.from_dict(row["preferences"])
        for query in row.get("queries", []):
            out[str(query["request_id"])] = shopper
    return out


def judgment_model_file(model_dir: Path) -> Path | None:
    """The newest judgment-trained model directly in ``model_dir`` (what a reranker without a registry serves)."""
    for path in sorted(model_dir.glob("ranker-v*.txt"), key=lambda p: p.stem, reverse=True):
        meta = path.with_suffix(".json")
        trained_from = json.loads(meta.read_text()).get("trained_from", "judgments") if meta.exists() else "judgments"
        if trained_from != "events":
            return path
    return None


def evaluate(heldout: Sequence[Group], props: propensity.Propensities, clip: float,
             rankers: Mapping[str, Callable[[Sequence[Candidate], Constraints], list[float]]],
             truth: Mapping[str, Shopper] | None, items: Mapping[str, Item]) -> dict[str, Any]:
    """Held-out IPW click NDCG@10 and, with the truth, true-utility NDCG@10 per ranker."""
    out: dict[str, Any] = {"heldout_impressions": len(heldout),
                           "heldout_clicked_impressions": sum(g.clicked for g in heldout)}
    ipw: dict[str, float] = {}
    true: dict[str, float] = {}
    clicks: dict[str, float] = {}
    scored_truth = [g for g in heldout if truth is not None and g.logged.request_id in truth and g.candidates]
    for name, score in rankers.items():
        cache: dict[str, list[float]] = {}
        ipw[name] = round(ipw_ndcg(heldout, shown_scores(heldout, score, cache), props, clip), 4)
        if truth is not None:
            full = [cache.get(g.logged.query) or score(g.candidates, g.parsed) for g in scored_truth]
            values = [true_ndcg(g.candidates, f, truth[g.logged.request_id], items)
                      for g, f in zip(scored_truth, full, strict=True)]
            true[name] = round(float(np.mean(values)), 4) if values else 0.0
            expected = [expected_clicks(g.candidates, f, truth[g.logged.request_id], items)
                        for g, f in zip(scored_truth, full, strict=True)]
            clicks[name] = round(float(np.mean(expected)), 4) if expected else 0.0
    ipw["logged_order"] = round(ipw_ndcg(heldout, [[-float(p) for p in g.positions] for g in heldout], props, clip), 4)
    out["ipw_click_ndcg@10"] = ipw
    if truth is not None:
        out["true_ndcg@10"] = true
        out["expected_clicks@10"] = clicks
        out["true_queries"] = len(scored_truth)
    return out


def publish(booster: Any, metadata: dict[str, Any], out_dir: Path, *, candidate: float,
            champion_value_fn: Callable[[Path], float | None], registry_uri: str | None, min_gain: float,
            postgres_url: str | None, fallback_champion: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Through the offline gate of decision 1003 on the held-out IPW click NDCG@10: with a registry the run is
    logged and the version registered (challenger when it beats the champion on the same held-out impressions);
    without one, the newest judgment-trained file in ``out_dir`` (else ``fallback_champion``) is the one to beat."""
    from pickwise_common.registry import CHALLENGER
    from pickwise_pipeline import model_registry
    from pickwise_pipeline.train_ranker import save

    registry = model_registry.registry_from(registry_uri)
    with tempfile.TemporaryDirectory(prefix="ranker-events-") as staging_dir:
        staged = save(booster, Path(staging_dir), metadata)
        if registry is not None:
            metrics = {EVENTS_METRIC: candidate, **{f"true_ndcg_at_10_{k}": v for k, v in
                                                   (metadata["offline"].get("true_ndcg@10") or {}).items()}}
            params = {"rounds": metadata["rounds"], "trained_from": "events", "propensity_clip": metadata["clip"],
                      **metadata["params"]}
            run_id = model_registry.log_training_run(
                registry, model_registry.RANKER_EXPERIMENT, params=params, metrics=metrics,
                artifact_dir=Path(staging_dir), tags={"ranker_version": str(metadata["version"]),
                                                      "trained_from": "events"})
            result = model_registry.register_with_gate(
                registry, "pickwise-ranker", Path(staging_dir), EVENTS_METRIC, candidate,
                lambda champion: champion_value_fn(champion.path), run_id=run_id, min_gain=min_gain,
                win_action=CHALLENGER, postgres_url=postgres_url, tags={"trained_from": "events"})
            outcome = result.as_dict()
        else:
            current = judgment_model_file(out_dir) or fallback_champion
            value = champion_value_fn(current) if current is not None else None
            decision = model_registry.decide(candidate, value, has_champion=current is not None, min_gain=min_gain,
                                             win_action=CHALLENGER)
            outcome = {"action": decision.action, "reason": decision.reason, "candidate": candidate,
                       "champion": value, "champion_file": current.name if current else None}
        target = out_dir if outcome["action"] == model_registry.PROMOTED else out_dir / str(outcome["action"])
        target.mkdir(parents=True, exist_ok=True)
        for path in (staged, staged.with_suffix(".json")):
            shutil.move(str(path), target / path.name)
    return target / staged.name, outcome


def run_from_events(args: argparse.Namespace) -> int:
    import lightgbm as lgb

    from pickwise_pipeline.model_registry import newest_ranker_file
    from pickwise_pipeline.settings import PipelineSettings
    from pickwise_pipeline.simulate import load_items
    from pickwise_pipeline.train_ranker import DEFAULT_PARAMS

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.perf_counter()
    postgres_url = args.postgres_url or PipelineSettings().postgres_url.get_secret_value()
    since = datetime.fromisoformat(args.since) if args.since else None
    until = datetime.fromisoformat(args.until) if getattr(args, "until", None) else None
    logged = load_logged(postgres_url, args.catalog, since, until)
    if not logged:
        print(f"train-ranker --from-events: no {args.catalog} search impressions in the event log", file=sys.stderr)
        return 1
    pages = explored_pages(logged)
    props = propensity.estimate(pages)
    retrieved = retrieve_all((entry.query for entry in logged), args.retriever_url, k=args.k, mode=args.mode,
                             catalog=args.catalog, timeout_s=args.timeout_s)
    groups = [make_group(entry, retrieved[entry.query].candidates, retrieved[entry.query].parsed) for entry in logged]
    held = [g for g in groups if heldout_shopper(g.logged.user_id, args.heldout_fraction, args.seed)]
    trainset = [g for g in groups if not heldout_shopper(g.logged.user_id, args.heldout_fraction, args.seed)]
    booster = train(trainset, props, rounds=args.rounds, clip=args.propensity_clip)
    truth = load_truth(Path(args.truth)) if args.truth else None
    items = {i.item_id: i for i in load_items(Path(args.catalog_csv))} if truth is not None else {}
    rankers: dict[str, Callable[[Sequence[Candidate], Constraints], list[float]]] = {
        "click_ranker": booster_scorer(booster), "retrieval_order": retrieval_scores}
    judgment_file = Path(args.judgment_model) if args.judgment_model else judgment_model_file(Path(args.out_dir))
    if judgment_file is not None and judgment_file.exists():
        rankers["judgment_ranker"] = booster_scorer(lgb.Booster(model_file=str(judgment_file)))
    offline = evaluate(held, props, args.propensity_clip, rankers, truth, items)
    candidate = offline["ipw_click_ndcg@10"]["click_ranker"]

    def champion_value(path: Path) -> float | None:
        model_file = newest_ranker_file(path)
        if model_file is None:
            return None
        score = booster_scorer(lgb.Booster(model_file=str(model_file)))
        return ipw_ndcg(held, shown_scores(held, score, {}), props, args.propensity_clip)

    users = {g.logged.user_id for g in groups}
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    gains = booster.feature_importance(importance_type="gain")
    importance = sorted(zip(FEATURE_NAMES, (float(g) for g in gains), strict=True), key=lambda kv: -kv[1])
    metadata = {
        "version": version, "trained_at": datetime.now(UTC).isoformat(), "model": "lightgbm-lambdarank",
        "trained_from": "events", "feature_names": list(FEATURE_NAMES), "params": DEFAULT_PARAMS,
        "rounds": args.rounds, "clip": args.propensity_clip,
        "events": {"catalog": args.catalog, "since": args.since, "until": getattr(args, "until", None),
                   "impressions": len(logged),
                   "clicked_impressions": sum(g.clicked for g in groups),
                   "shown_items_not_retrieved": sum(len(g.logged.positions) - len(g.rows) for g in groups),
                   "shoppers": len(users), "heldout_fraction": args.heldout_fraction, "seed": args.seed,
                   "train_impressions": len(trainset), "heldout_impressions": len(held),
                   "distinct_queries": len(retrieved)},
        "propensities": {"method": "randpair", "values": list(props.values),
                         "pair_clicks": [list(p) for p in props.pair_clicks], "explored_impressions": props.pages},
        "retrieval": {"mode": args.mode, "k": args.k},
        "judgment_model": judgment_file.name if judgment_file is not None else None,
        "offline": offline,
        "validation": {"ndcg@10_ranker": candidate, "ndcg@10_retrieval": offline["ipw_click_ndcg@10"][
            "retrieval_order"], "metric": "heldout IPW click NDCG@10"},
        "top_features_by_gain": [{"feature": n, "gain": round(g, 3)} for n, g in importance[:10]],
    }
    path, gate = publish(booster, metadata, Path(args.out_dir), candidate=candidate, champion_value_fn=champion_value,
                         registry_uri=getattr(args, "registry_uri", None), min_gain=args.min_gain,
                         postgres_url=postgres_url, fallback_champion=judgment_file)
    print(json.dumps({"model": str(path), "propensities": metadata["propensities"]["values"], "offline": offline,
                      "events": metadata["events"], "gate": gate}, indent=2))
    # a row is one impression learned from or evaluated on
    print(summary_line("train-ranker --from-events", len(groups), time.perf_counter() - started),
          file=sys.stderr, flush=True)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--from-events`` options of ``train-ranker``."""
    from pickwise_common.settings import default_data_root

    group = parser.add_argument_group("from events (decision 1004b)")
    group.add_argument("--from-events", action="store_true",
                       help="learn from impressions joined to clicks/carts/purchases instead of judgments")
    group.add_argument("--since", default=None, help="only impressions at or after this ISO time")
    group.add_argument("--until", default=None, help="only impressions before this ISO time")
    group.add_argument("--catalog", default="flipkart")
    group.add_argument("--truth", default=None, help="the simulator's truth.jsonl: also report NDCG@10 against the "
                       "simulated shoppers' true utility")
    group.add_argument("--catalog-csv", default=str(default_data_root() / "flipkart_mobiles.csv"),
                       help="the catalog behind --truth's utilities")
    group.add_argument("--postgres-url", default=None, help="the event log (default: $PICKWISE_POSTGRES_URL)")
    group.add_argument("--heldout-fraction", type=float, default=0.25, help="share of shoppers held out")
    group.add_argument("--propensity-clip", type=float, default=propensity.PROPENSITY_CLIP,
                       help="propensities below this count as this (weights at most 1/clip)")
    group.add_argument("--judgment-model", default=None, help="the judgment-trained model to compare with "
                       "(default: the newest judgment-trained ranker-v*.txt in --out-dir)")
