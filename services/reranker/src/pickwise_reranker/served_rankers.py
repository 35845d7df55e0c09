"""Which learned ranker answers for each registry alias (decision 1003b).

The reranker holds one ranker per alias (``champion``, ``challenger``). ``RankerSlots.refresh`` (blocking: run
it in a thread) resolves ``pickwise-ranker@<alias>`` through the model registry, fetches a version once into
the local model cache and loads it with ``learned_ranker.load_model`` (the feature-name check stays). Without a
registry, or without a registered champion, the champion is the newest file of ``ranker_model_dir`` as before.
A registry that fails keeps what is loaded; a deleted ``challenger`` alias unloads the challenger; a request for
the challenger while none is loaded is answered by the champion.

A loaded ranker replaces the retrieval score only when it passed its gate: its metadata says it beat retrieval
order on its validation split, or its registry version is tagged ``gate=passed``. Otherwise the alias still
answers (and reports its version) with retrieval order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from prometheus_client import Counter

from pickwise_common.registry import CHALLENGER, CHAMPION, RANKER_MODEL
from pickwise_reranker import learned_ranker
from pickwise_reranker.learned_ranker import RankerModel, RankerModelError

log = logging.getLogger("pickwise.reranker.served_rankers")

REGISTERED_NAME = RANKER_MODEL
ALIASES = (CHAMPION, CHALLENGER)
GATE_TAG = "gate"
GATE_PASSED = "passed"

REFRESH_ERRORS = Counter(
    "pickwise_reranker_model_refresh_errors_total",
    "Ranker refreshes that kept the loaded model: the registry failed (kind=registry) or the fetched model "
    "could not be loaded (kind=load)", ["alias", "kind"])


@dataclass(frozen=True)
class Gate:
    """Whether a ranker may replace the retrieval score, and why."""

    passed: bool
    reason: str


def gate_of(metadata: Mapping[str, Any], tags: Mapping[str, str]) -> Gate:
    """``passed`` when the registry tagged the version ``gate=passed`` or the model's own validation says it
    beat retrieval order (``validation.ndcg@10_ranker > validation.ndcg@10_retrieval``)."""
    if tags.get(GATE_TAG) == GATE_PASSED:
        return Gate(True, f"registry tag {GATE_TAG}={GATE_PASSED}")
    validation = metadata.get("validation")
    validation = validation if isinstance(validation, Mapping) else {}
    ranker, retrieval = validation.get("ndcg@10_ranker"), validation.get("ndcg@10_retrieval")
    if not isinstance(ranker, int | float) or not isinstance(retrieval, int | float):
        return Gate(False, "metadata has no validation ndcg@10_ranker and ndcg@10_retrieval, and no "
                           f"{GATE_TAG}={GATE_PASSED} tag")
    if ranker > retrieval:
        return Gate(True, f"validation NDCG@10 {ranker} > retrieval order's {retrieval}")
    return Gate(False, f"validation NDCG@10 {ranker} <= retrieval order's {retrieval}: serving retrieval order")


@dataclass(frozen=True)
class ServedRanker:
    """A loaded ranker and where it came from: a registry version (``source="registry"``) or a file."""

    model: RankerModel
    alias: str
    version: str
    source: Literal["registry", "file"]
    gate: Gate
    registered_name: str = REGISTERED_NAME

    @property
    def label(self) -> str:
        """``RerankResponse.ranker_version``: ``pickwise-ranker/<version>@<alias>``, ``file:<version>@<alias>``."""
        if self.source == "registry":
            return f"{self.registered_name}/{self.version}@{self.alias}"
        return f"file:{self.version}@{self.alias}"

    @property
    def metric_version(self) -> str:
        """The label without its alias (the ``version`` label of the per-model request counter)."""
        return self.label.rsplit("@", 1)[0]

    def status(self) -> dict[str, Any]:
        return {"version": self.label, "model": self.model.name, "source": self.source,
                "path": str(self.model.path), "gate": "passed" if self.gate.passed else "held_back",
                "gate_reason": self.gate.reason,
                "validation_ndcg_at_10": (self.model.metadata.get("validation") or {}).get("ndcg@10_ranker")}


class RankerRegistry(Protocol):
    """The part of ``pickwise_common.registry.Registry`` (decision 1000) the reranker uses: ``fetch`` returns a
    ``LocalModel`` (name, version, alias, path) or None, ``version`` a ``ModelVersionInfo`` (its ``tags``)."""

    def fetch(self, name: str, alias: str) -> Any: ...

    def version(self, name: str, version: str) -> Any: ...


def model_file_of(path: Path) -> Path:
    """The ``ranker-v*.txt`` of a fetched artifact: the file itself, or the newest one in the directory."""
    if path.is_file():
        return path
    files = learned_ranker.model_files(path)
    if not files:
        nested = sorted(path.rglob(learned_ranker.MODEL_GLOB), key=lambda p: p.stem, reverse=True) \
            if path.is_dir() else []
        if not nested:
            raise RankerModelError(f"{path}: no {learned_ranker.MODEL_GLOB} in the fetched artifact")
        return nested[0]
    return files[0]


@dataclass
class RankerSlots:
    """The ranker served per alias. ``served`` is replaced whole by a refresh, so a request that read it keeps a
    consistent pair."""

    model_dir: Path | None = None
    registry: RankerRegistry | None = None
    name: str = REGISTERED_NAME  # the registered model name (another one only to isolate tests)
    served: dict[str, ServedRanker] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unloadable: dict[str, str] = field(default_factory=dict)  # alias -> registered version that failed to load
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of_file(cls, model: RankerModel, *, tags: Mapping[str, str] | None = None) -> RankerSlots:
        """Slots serving one already-loaded model as the file champion (tests, tools)."""
        return cls(served={CHAMPION: _file_ranker(model, tags or {})})

    def pick(self, alias: str) -> ServedRanker | None:
        """The ranker that answers ``alias``: its own, else the champion's (a missing challenger)."""
        served = self.served
        return served.get(alias) or served.get(CHAMPION)

    def refresh(self, *, force: bool = False) -> list[str]:
        """Resolve both aliases and load what changed (``force``: reload even the same version). Returns the
        aliases whose ranker changed. Blocking (registry calls, downloads, model loading): run it in a thread."""
        with self._lock:
            served = dict(self.served)
            changed: list[str] = []
            for alias in ALIASES:
                if self._refresh_alias(alias, served, force=force):
                    changed.append(alias)
            self.served = served
        for alias in changed:
            now = served.get(alias)
            log.info("ranker %s: %s", alias, f"{now.label} ({now.model.name}, gate {now.gate.reason})"
                     if now else "unloaded")
        return changed

    def _refresh_alias(self, alias: str, served: dict[str, ServedRanker], *, force: bool) -> bool:
        current = served.get(alias)
        if self.registry is not None:
            try:
                local = self.registry.fetch(self.name, alias)
                same = (local is not None and not force and current is not None and current.source == "registry"
                        and current.version == str(local.version))
                tags = dict(self.registry.version(self.name, str(local.version)).tags) \
                    if local is not None and not same else {}
            except Exception as exc:  # noqa: BLE001 - the registry fails in many ways (HTTP, MLflow, disk); recorded
                self._failed(alias, "registry", f"registry: {type(exc).__name__}: {exc}")
                if current is not None or alias == CHALLENGER:
                    return False  # keep what is loaded
                return self._load_file_champion(served, current, force=force)
            if same:
                self.errors.pop(alias, None)
                return False
            if local is not None:
                if not force and self.unloadable.get(alias) == str(local.version) and current is not None:
                    return False  # tried and failed already: keep the loaded one until the alias moves
                try:
                    model = learned_ranker.load_model(model_file_of(Path(local.path)))
                except (RankerModelError, OSError) as exc:
                    self.unloadable[alias] = str(local.version)
                    self._failed(alias, "load", f"{self.name}/{local.version}: {exc}")
                    if current is not None or alias == CHALLENGER:
                        return False
                    return self._load_file_champion(served, current, force=force)
                served[alias] = ServedRanker(model=model, alias=alias, version=str(local.version),
                                             source="registry", gate=gate_of(model.metadata, tags),
                                             registered_name=self.name)
                self.errors.pop(alias, None)
                self.unloadable.pop(alias, None)
                return True
            self.errors.pop(alias, None)
            if alias == CHALLENGER:  # no challenger registered (or its alias deleted): unload
                return served.pop(alias, None) is not None
        if alias == CHALLENGER:
            return False
        return self._load_file_champion(served, current, force=force)

    def _load_file_champion(self, served: dict[str, ServedRanker], current: ServedRanker | None, *,
                            force: bool) -> bool:
        """The champion from ``model_dir`` (newest usable file), as without a registry."""
        if self.model_dir is None:
            return False
        files = learned_ranker.model_files(self.model_dir)
        if (not force and current is not None and current.source == "file" and files
                and current.model.path == files[0]):
            return False
        model = learned_ranker.load_newest(self.model_dir)
        if model is None:
            return served.pop(CHAMPION, None) is not None
        served[CHAMPION] = _file_ranker(model, {})
        return True

    def _failed(self, alias: str, kind: str, message: str) -> None:
        REFRESH_ERRORS.labels(alias, kind).inc()
        self.errors[alias] = message
        log.warning("ranker %s: keeping the loaded model: %s", alias, message)

    def status(self) -> dict[str, Any]:
        served = self.served
        return {alias: served[alias].status() if alias in served else None for alias in ALIASES} | {
            "errors": dict(self.errors)}


def _file_ranker(model: RankerModel, tags: Mapping[str, str]) -> ServedRanker:
    return ServedRanker(model=model, alias=CHAMPION, version=model.version, source="file",
                        gate=gate_of(model.metadata, tags))
