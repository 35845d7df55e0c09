"""Learned-ranker stage: a LightGBM LambdaRank model over ``pickwise_common.ranking_features``.

Model files are written by ``pickwise-pipeline train-ranker`` as ``ranker-v<version>.txt`` (LightGBM
text format) with ``ranker-v<version>.json`` beside it (feature names, version, validation NDCG). The
service loads the newest version whose feature names match the features it computes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pickwise_common.ranking_features import FEATURE_NAMES, extract_features
from pickwise_common.schemas import Candidate, Constraints

log = logging.getLogger("pickwise.reranker.learned_ranker")

MODEL_GLOB = "ranker-v*.txt"
MIN_BUFFER_ROWS = 64

_buffers = threading.local()


def feature_buffer(n_rows: int, n_features: int) -> np.ndarray:
    """A float64 C-contiguous ``n_rows x n_features`` view of this thread's reusable buffer (scoring runs in
    the thread pool: one buffer per worker thread, grown when a request has more candidates)."""
    buf: np.ndarray | None = getattr(_buffers, "rows", None)
    if buf is None or buf.shape[0] < n_rows or buf.shape[1] != n_features:
        buf = np.empty((max(n_rows, MIN_BUFFER_ROWS), n_features), dtype=np.float64)
        _buffers.rows = buf
    return buf[:n_rows]


class RankerModelError(ValueError):
    """A model file that cannot serve: unreadable, or trained on other features."""


@dataclass
class RankerModel:
    version: str
    path: Path
    booster: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"lightgbm-lambdarank:{self.version}"

    def score(self, candidates: Sequence[Candidate], parsed: Constraints | None) -> list[float]:
        if not candidates:
            return []
        rows = extract_features(candidates, parsed)
        # float64, C-contiguous, 2-D: LightGBM predicts on it without a copy; the buffer is reused per thread
        data = feature_buffer(len(rows), len(FEATURE_NAMES))
        data[...] = rows
        # one thread: for ~50 rows OpenMP's thread start-up and spinning cost more than they save
        # (p95 of predict 13 ms with the default threads vs 1 ms with one, on 2 shared cores)
        scores: list[float] = self.booster.predict(data, num_threads=1).tolist()
        return scores


def model_files(model_dir: Path) -> list[Path]:
    """Model files, newest version first (versions are sortable timestamps)."""
    if not model_dir.is_dir():
        return []
    return sorted(model_dir.glob(MODEL_GLOB), key=lambda p: p.stem, reverse=True)


def load_model(path: Path) -> RankerModel:
    import lightgbm as lgb

    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise RankerModelError(f"{path.name}: metadata file {meta_path.name} is missing")
    try:
        metadata = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise RankerModelError(f"{meta_path.name}: not JSON ({exc})") from exc
    names = tuple(metadata.get("feature_names", ()))
    if names != FEATURE_NAMES:
        raise RankerModelError(f"{path.name}: trained on other features than this reranker computes")
    try:
        booster = lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as exc:
        raise RankerModelError(f"{path.name}: not a LightGBM model ({exc})") from exc
    if booster.num_feature() != len(FEATURE_NAMES):
        raise RankerModelError(f"{path.name}: has {booster.num_feature()} features, expected {len(FEATURE_NAMES)}")
    version = str(metadata.get("version") or path.stem.removeprefix("ranker-v"))
    return RankerModel(version=version, path=path, booster=booster, metadata=metadata)


def load_newest(model_dir: Path) -> RankerModel | None:
    """The newest usable model in ``model_dir``; unusable files are skipped with a warning."""
    for path in model_files(model_dir):
        try:
            return load_model(path)
        except RankerModelError as exc:
            log.warning("skipping ranker model: %s", exc)
    return None

