"""Collaborative-filtering model of a catalog: the artifact train-cf writes and the retriever serves (numpy only).

Training (``pickwise_pipeline.train_cf``) fits implicit-feedback ALS with ``implicit``; this module holds what is
needed at serving time: the item factors, the same user solve ALS does (``fold_in``, so a user's newest history
shows without retraining), precomputed neighbours, bought-together pairs, popularity, repeat-purchase rates, and
the blend that turns them into the feed (``blend``; the offline evaluation scores the same function).

Artifact layout: ``<models_root>/cf/<catalog>/cf-v<UTC yyyymmddTHHMMSSZ>/`` with ``meta.json`` and ``.npy`` files;
a version directory appears whole (written under a temporary name, then renamed).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

# Weight one event adds to the user's history hash (``user_history_key``): the fold-in input. A purchase line adds
# ``EVENT_CF_WEIGHT["purchase"] + log1p(quantity)``; every other type adds its constant alone.
EVENT_CF_WEIGHT: dict[str, float] = {"purchase": 1.0, "add_to_cart": 0.75, "click": 0.5}
CF_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_CF_WEIGHT)
MODEL_DIR_PREFIX = "cf-v"
VERSION_FORMAT = "%Y%m%dT%H%M%SZ"
_VERSION_RE = re.compile(r"^cf-v\d{8}T\d{6}Z$")


def event_cf_weight(event_type: str, quantity: int | None = None) -> float:
    """History weight of one event: purchase = 1 + log1p(quantity), click = 0.5, add_to_cart = 0.75, else 0."""
    base = EVENT_CF_WEIGHT.get(event_type, 0.0)
    if event_type == "purchase" and quantity is not None and quantity > 0:
        return base + math.log1p(quantity)
    return base


def default_models_root() -> Path:
    """``PICKWISE_MODELS_DIR``, else ``<repo>/.pickwise/models`` (trained models are not committed)."""
    from pickwise_common.settings import ModelSettings

    return ModelSettings().models_dir


@dataclass(frozen=True)
class BlendWeights:
    """Weights of the feed's sources; tuned on a validation month carved from the train window (decision 0811).

    Each source scores items in [0, 1]: ``repeat`` = the user's own history weight to the power
    ``history_power`` (times the item's repeat rate to the power ``repeat_rate_power``) / its max, ``als`` =
    ALS score / the best ALS score, ``popularity`` = popularity / the top item's, ``bought_together`` = the best
    NPMI of a pair with an item of the user's history.
    """

    # tuned by `pickwise-pipeline evaluate-cf` on the validation month (train <= 2011-09-30, validate October)
    repeat: float = 1.0
    als: float = 0.6
    popularity: float = 0.35
    bought_together: float = 0.1
    repeat_rate_power: float = 0.75
    history_power: float = 0.75
    candidates: int = 200

    def as_dict(self) -> dict[str, float]:
        return {"repeat": self.repeat, "als": self.als, "popularity": self.popularity,
                "bought_together": self.bought_together, "repeat_rate_power": self.repeat_rate_power,
                "history_power": self.history_power, "candidates": self.candidates}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> BlendWeights:
        if not raw:
            return cls()
        known = {k: raw[k] for k in cls().as_dict() if k in raw}
        if "candidates" in known:
            known["candidates"] = int(known["candidates"])
        return cls(**known)


@dataclass(frozen=True)
class Scored:
    """One recommended item: its blended score and what each source gave it (for ``explain``)."""

    item_id: str
    score: float
    sources: dict[str, float]


def _normalise(scores: Mapping[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    top = max(scores.values())
    if top <= 0:
        return {}
    return {item: value / top for item, value in scores.items() if value > 0}


def blend(history: Mapping[str, float], als: Mapping[str, float], popularity: Mapping[str, float],
          weights: BlendWeights, k: int, exclude: Iterable[str] = (),
          repeat_rate: Mapping[str, float] | None = None,
          bought_together: Mapping[str, float] | None = None) -> list[Scored]:
    """The feed: items ranked by a weighted sum of the normalised sources (pure; served and evaluated alike).

    ``history`` item -> the user's weight, ``als`` item -> ALS score (the top candidates), ``popularity``
    item -> popularity, ``repeat_rate`` item -> share of its buyers who bought it again, ``bought_together``
    item -> co-purchase score from the user's history. Ties break by item id so the order is deterministic.
    """
    excluded = set(exclude)
    repeat = {i: w ** weights.history_power for i, w in history.items() if w > 0} if weights.history_power != 1.0 \
        else dict(history)
    if weights.repeat_rate_power and repeat_rate is not None:
        floor = 0.05
        repeat = {i: w * max(repeat_rate.get(i, 0.0), floor) ** weights.repeat_rate_power for i, w in repeat.items()}
    parts: dict[str, dict[str, float]] = {
        "repeat": _normalise({i: w for i, w in repeat.items() if w > 0}),
        "als": _normalise(als),
        "popularity": _normalise(popularity),
        "bought_together": _normalise(bought_together or {}),
    }
    factor = {"repeat": weights.repeat, "als": weights.als, "popularity": weights.popularity,
              "bought_together": weights.bought_together}
    totals: dict[str, float] = {}
    sources: dict[str, dict[str, float]] = {}
    for name, scores in parts.items():
        w = factor[name]
        if w == 0:
            continue
        for item, value in scores.items():
            if item in excluded:
                continue
            contribution = w * value
            totals[item] = totals.get(item, 0.0) + contribution
            sources.setdefault(item, {})[name] = round(contribution, 6)
    ranked = sorted(totals.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
    return [Scored(item, score, sources[item]) for item, score in ranked]


@dataclass
class CfModel:
    """A trained CF model of one catalog (see the module docstring); built by train-cf, loaded by the retriever."""

    version: str
    catalog: str
    trained_at: str
    window: dict[str, str | None]
    item_ids: list[str]
    item_factors: np.ndarray                     # float32, n_items x factors
    regularization: float
    alpha: float                                 # confidence = alpha * bm25(weight)
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    # BM25 confidence weighting of a history row, the same as implicit.nearest_neighbours.bm25_weight did at fit
    item_idf: np.ndarray | None = None           # float32 per item; None = raw weights
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    bm25_average_length: float = 1.0
    similar: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    bought_together: dict[str, list[tuple[str, float, float, int]]] = field(default_factory=dict)
    popularity: list[tuple[str, float]] = field(default_factory=list)
    popularity_by_category: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    item_category: dict[str, str] = field(default_factory=dict)
    item_repeat_rate: dict[str, float] = field(default_factory=dict)
    repeat: dict[str, Any] = field(default_factory=dict)
    blend_weights: BlendWeights = field(default_factory=BlendWeights)

    def __post_init__(self) -> None:
        self.item_factors = np.ascontiguousarray(self.item_factors, dtype=np.float32)
        self._index = {item: i for i, item in enumerate(self.item_ids)}
        y = self.item_factors.astype(np.float64)
        self._yty = y.T @ y
        self._popularity_map = dict(self.popularity)

    @property
    def factors(self) -> int:
        return int(self.item_factors.shape[1])

    def has_item(self, item_id: str) -> bool:
        return item_id in self._index

    def confidence(self, history: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, confidences) of a history row: BM25 as at fit time, times alpha; unknown items dropped."""
        known = [(self._index[item], float(w)) for item, w in history.items() if item in self._index and w > 0]
        if not known:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        idx = np.array([i for i, _ in known], dtype=np.int64)
        w = np.array([v for _, v in known], dtype=np.float64)
        if self.item_idf is not None:
            length_norm = (1.0 - self.bm25_b) + self.bm25_b * w.sum() / self.bm25_average_length
            w = w * (self.bm25_k1 + 1.0) / (self.bm25_k1 * length_norm + w) * self.item_idf[idx].astype(np.float64)
        return idx, self.alpha * w

    def fold_in(self, history: Mapping[str, float]) -> np.ndarray | None:
        """The user's factors from their history against the fixed item factors: ALS's user step,
        x = (YᵀY + λI + Σ (c_i − 1) y_i y_iᵀ)⁻¹ Σ c_i y_i; None when no history item is known to the model."""
        idx, conf = self.confidence(history)
        if idx.size == 0:
            return None
        y = self.item_factors[idx].astype(np.float64)
        a = self._yty + self.regularization * np.eye(self.factors) + (y.T * (conf - 1.0)) @ y
        b = (y * conf[:, None]).sum(axis=0)
        return np.linalg.solve(a, b).astype(np.float32)

    def als_scores(self, history: Mapping[str, float], k: int,
                   exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """Plain ALS: the k items with the highest dot product with the folded-in user vector ([] when cold)."""
        user = self.fold_in(history)
        if user is None:
            return []
        scores = self.item_factors @ user
        excluded = [self._index[i] for i in exclude if i in self._index]
        if excluded:
            scores[excluded] = -np.inf
        k = min(k, len(self.item_ids))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.item_ids[i], float(scores[i])) for i in top if np.isfinite(scores[i])]

    def bought_together_scores(self, history: Mapping[str, float]) -> dict[str, float]:
        """item -> the best NPMI of a pair (history item, item), over the user's history items."""
        out: dict[str, float] = {}
        for item in history:
            for other, _lift, npmi, _support in self.bought_together.get(item, ()):
                if npmi > out.get(other, 0.0):
                    out[other] = npmi
        return out

    def recommend_scored(self, history: Mapping[str, float], k: int, exclude: Iterable[str] = (),
                         weights: BlendWeights | None = None) -> list[Scored]:
        """The served feed with each item's sources: ``blend`` of repeat, ALS, bought-together and popularity.
        A user with no known history gets popularity alone (cold start)."""
        weights = weights or self.blend_weights
        excluded = set(exclude)
        als = dict(self.als_scores(history, weights.candidates, excluded)) if weights.als else {}
        popular = dict(self.popularity[: max(weights.candidates, k + len(excluded))])
        together = self.bought_together_scores(history) if weights.bought_together else {}
        known_history = {i: w for i, w in history.items() if w > 0}
        if not known_history:
            weights = BlendWeights(repeat=0.0, als=0.0, popularity=1.0, bought_together=0.0)
        return blend(known_history, als, popular, weights, k, excluded,
                     repeat_rate=self.item_repeat_rate, bought_together=together)

    def recommend(self, history: Mapping[str, float], k: int,
                  exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The served feed as (item_id, score), best first (see ``recommend_scored``)."""
        return [(s.item_id, s.score) for s in self.recommend_scored(history, k, exclude)]

    def similar_items(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """The item's nearest neighbours by cosine of the ALS factors ([] for an item without history)."""
        return list(self.similar.get(item_id, ()))[:k]

    def bought_together_items(self, item_id: str, k: int) -> list[tuple[str, float, float, int]]:
        """Items bought in the same baskets: (item, lift, npmi, support), best NPMI first ([] when none passes
        the minimum support)."""
        return list(self.bought_together.get(item_id, ()))[:k]

    def popular_items(self, k: int, category: str | None = None,
                      exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """Recency-weighted popularity, of one category when given and known, else overall."""
        excluded = set(exclude)
        source = self.popularity_by_category.get(category, self.popularity) if category else self.popularity
        return [(i, s) for i, s in source if i not in excluded][:k]


# ---- artifacts -----------------------------------------------------------------------------------------------

def catalog_models_dir(models_root: Path, catalog: str) -> Path:
    return Path(models_root) / "cf" / catalog


def new_version(at: datetime | None = None) -> str:
    return MODEL_DIR_PREFIX + (at or datetime.now(UTC)).astimezone(UTC).strftime(VERSION_FORMAT)


def latest_version_dir(models_root: Path, catalog: str) -> Path | None:
    """The newest complete version directory of a catalog's CF models, or None when none was trained."""
    base = catalog_models_dir(models_root, catalog)
    if not base.is_dir():
        return None
    versions = sorted(p for p in base.iterdir()
                      if p.is_dir() and _VERSION_RE.match(p.name) and (p / "meta.json").is_file())
    return versions[-1] if versions else None


def save(model: CfModel, models_root: Path) -> Path:
    """Write ``model`` as a new version directory under ``models_root`` (atomic rename); returns its path.

    When the version's name is taken (two saves in one second) the next free second is used and
    ``model.version`` updated."""
    base = catalog_models_dir(models_root, model.catalog)
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.strptime(model.version.removeprefix(MODEL_DIR_PREFIX), VERSION_FORMAT).replace(tzinfo=UTC)
    while (base / model.version).exists():
        stamp += timedelta(seconds=1)
        model.version = new_version(stamp)
    tmp = base / f".{model.version}.tmp-{os.getpid()}"
    tmp.mkdir()
    np.save(tmp / "item_factors.npy", model.item_factors.astype(np.float32))
    if model.item_idf is not None:
        np.save(tmp / "item_idf.npy", model.item_idf.astype(np.float32))
    index = {item: i for i, item in enumerate(model.item_ids)}
    n_similar = max((len(v) for v in model.similar.values()), default=0)
    sim_idx = np.full((len(model.item_ids), n_similar), -1, dtype=np.int32)
    sim_score = np.zeros((len(model.item_ids), n_similar), dtype=np.float32)
    for item, neighbours in model.similar.items():
        row = index[item]
        for j, (other, score) in enumerate(neighbours):
            sim_idx[row, j] = index[other]
            sim_score[row, j] = score
    np.save(tmp / "similar_idx.npy", sim_idx)
    np.save(tmp / "similar_score.npy", sim_score)
    meta = {
        "format": 1, "version": model.version, "catalog": model.catalog, "trained_at": model.trained_at,
        "window": model.window, "metrics": model.metrics, "params": model.params,
        "regularization": model.regularization, "alpha": model.alpha,
        "bm25": {"k1": model.bm25_k1, "b": model.bm25_b, "average_length": model.bm25_average_length,
                 "enabled": model.item_idf is not None},
        "item_ids": model.item_ids,
        "bought_together": {i: [list(p) for p in pairs] for i, pairs in model.bought_together.items()},
        "popularity": [list(p) for p in model.popularity],
        "popularity_by_category": {c: [list(p) for p in pairs] for c, pairs in model.popularity_by_category.items()},
        "item_category": model.item_category, "item_repeat_rate": model.item_repeat_rate,
        "repeat": model.repeat, "blend_weights": model.blend_weights.as_dict(),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, separators=(",", ":")), encoding="utf-8")
    final = base / model.version
    tmp.rename(final)
    return final


def load(directory: Path) -> CfModel:
    """Read a version directory written by ``save``."""
    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    item_ids: list[str] = meta["item_ids"]
    factors = np.load(directory / "item_factors.npy")
    idf_path = directory / "item_idf.npy"
    item_idf = np.load(idf_path) if meta["bm25"]["enabled"] and idf_path.is_file() else None
    sim_idx = np.load(directory / "similar_idx.npy")
    sim_score = np.load(directory / "similar_score.npy")
    similar: dict[str, list[tuple[str, float]]] = {}
    for row, item in enumerate(item_ids):
        pairs = [(item_ids[j], float(s)) for j, s in zip(sim_idx[row], sim_score[row], strict=True) if j >= 0]
        if pairs:
            similar[item] = pairs
    return CfModel(
        version=meta["version"], catalog=meta["catalog"], trained_at=meta["trained_at"], window=meta["window"],
        item_ids=item_ids, item_factors=factors, regularization=float(meta["regularization"]),
        alpha=float(meta["alpha"]), metrics=meta["metrics"], params=meta["params"], item_idf=item_idf,
        bm25_k1=float(meta["bm25"]["k1"]), bm25_b=float(meta["bm25"]["b"]),
        bm25_average_length=float(meta["bm25"]["average_length"]), similar=similar,
        bought_together={i: [(str(o), float(lift), float(npmi), int(sup)) for o, lift, npmi, sup in pairs]
                         for i, pairs in meta["bought_together"].items()},
        popularity=[(str(i), float(s)) for i, s in meta["popularity"]],
        popularity_by_category={c: [(str(i), float(s)) for i, s in pairs]
                                for c, pairs in meta["popularity_by_category"].items()},
        item_category=meta.get("item_category", {}), item_repeat_rate=meta.get("item_repeat_rate", {}),
        repeat=meta.get("repeat", {}), blend_weights=BlendWeights.from_dict(meta.get("blend_weights")),
    )


def load_latest(models_root: Path, catalog: str) -> CfModel | None:
    """The newest model of a catalog, or None when none was trained."""
    directory = latest_version_dir(models_root, catalog)
    return load(directory) if directory is not None else None
