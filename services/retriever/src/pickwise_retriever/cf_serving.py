"""Collaborative filtering served by the retriever (decision 0813): each catalog's CF model (the registry's
``pickwise-cf-<catalog>@champion`` when the registry is on, else the newest version directory; swapped in when
either changes, decision 1003b), the user's live state from Redis (history hash, dismissed set, recent
clicks), and the feed built from them at request time: the history is folded into the model's item factors
on every request, so a purchase the event-consumer applied shows in the next feed without retraining."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
from prometheus_client import Counter

from pickwise_common import cf
from pickwise_common import redis as rd
from pickwise_common.registry import CHAMPION, cf_model_name
from pickwise_common.schemas import Item

log = logging.getLogger("pickwise.retriever.cf")

CLICK_SEEDS = 5          # the user's most recent clicks whose CF neighbours join the feed
CLICK_DECAY = 0.6        # weight of the i-th most recent click: CLICK_DECAY ** i
NEIGHBOURS_PER_CLICK = 20
KNOWN_ROOM = 50          # extra candidates asked of the model for the ids the served catalog may not hold
CF_META = "meta.json"

REFRESH_ERRORS = Counter(
    "pickwise_retriever_cf_refresh_errors_total",
    "CF model refreshes that kept the served model because the model registry failed", ["catalog"])


class CfRegistry(Protocol):
    """The part of ``pickwise_common.registry.Registry`` the CF serving uses: ``fetch`` returns a ``LocalModel``
    (name, version, alias, path: the version's files downloaded into the model cache) or None."""

    def fetch(self, name: str, alias: str) -> Any: ...


def cf_directory_of(path: Path) -> Path:
    """The ``cf-v*`` directory of a fetched artifact: the path itself when it holds ``meta.json``, else the one
    directory below it that does."""
    if (path / CF_META).is_file():
        return path
    found = sorted(p.parent for p in path.rglob(CF_META))
    if not found:
        raise FileNotFoundError(f"{path}: no {CF_META} in the fetched CF model")
    return found[-1]


class CfModels:
    """The CF model per catalog: ``pickwise-cf-<catalog>@champion`` when a registry is given and has one, else
    the newest version directory under ``models_root``. ``refresh`` (blocking: run it in a thread) loads a model
    whose source changed and swaps it in whole; a request keeps the model object it started with."""

    def __init__(self, models_root: Path, catalogs: Iterable[str], registry: CfRegistry | None = None) -> None:
        self.models_root = Path(models_root)
        self.catalogs = tuple(catalogs)
        self.registry = registry
        self.models: dict[str, cf.CfModel] = {}
        self.loaded_from: dict[str, str] = {}      # catalog -> version directory name served
        self.registered: dict[str, str] = {}       # catalog -> registered version served (absent: from a directory)
        self.failed: dict[str, str] = {}           # catalog -> source that failed to load
        self.registry_errors: dict[str, str] = {}  # catalog -> the registry's last failure
        self.loaded_at: dict[str, float] = {}

    def get(self, catalog: str) -> cf.CfModel | None:
        return self.models.get(catalog)

    def version(self, catalog: str) -> str | None:
        """What CF responses report as ``model_version``: ``pickwise-cf-<catalog>/<version>@champion
        (<cf-v… directory>)`` for a registered model, the ``cf-v…`` directory name otherwise."""
        model = self.models.get(catalog)
        return self.label(catalog, model) if model is not None else None

    def label(self, catalog: str, model: cf.CfModel) -> str:
        """``version`` of ``model`` (the one a request started with, even if a refresh swapped it since)."""
        registered = self.registered.get(catalog)
        if registered is None or self.models.get(catalog) is not model:
            return model.version
        return f"{cf_model_name(catalog)}/{registered}@{CHAMPION} ({model.version})"

    def _registered_source(self, catalog: str) -> tuple[Path | None, str | None, bool]:
        """(directory, registered version, registry failed) of the catalog's registered champion."""
        if self.registry is None:
            return None, None, False
        try:
            local = self.registry.fetch(cf_model_name(catalog), CHAMPION)
        except Exception as exc:  # noqa: BLE001 - the registry fails in many ways (HTTP, MLflow, disk); recorded
            REFRESH_ERRORS.labels(catalog).inc()
            self.registry_errors[catalog] = f"{type(exc).__name__}: {exc}"
            log.warning("CF model registry of catalog %s failed, keeping the served model: %s", catalog, exc)
            return None, None, True
        self.registry_errors.pop(catalog, None)
        if local is None:
            return None, None, False
        try:
            return cf_directory_of(Path(local.path)), str(local.version), False
        except OSError as exc:
            self.failed[catalog] = f"{cf_model_name(catalog)}/{local.version}"
            log.error("CF model %s/%s has no model directory: %s", cf_model_name(catalog), local.version, exc)
            return None, None, False

    def refresh(self, *, force: bool = False) -> list[str]:
        """Load each catalog's model when its source differs from the one served (``force``: even one that
        failed before). Returns the catalogs whose model changed. A catalog whose models were all removed, or
        whose registry fails, keeps serving the model it has."""
        changed = []
        for catalog in self.catalogs:
            directory, registered, registry_failed = self._registered_source(catalog)
            if registry_failed and catalog in self.models:
                continue
            if directory is None:
                directory = cf.latest_version_dir(self.models_root, catalog)
            if directory is None:
                continue
            source = f"{cf_model_name(catalog)}/{registered}" if registered is not None else directory.name
            served = self.registered.get(catalog)
            if directory.name == self.loaded_from.get(catalog) and registered == served and not force:
                continue
            if not force and source == self.failed.get(catalog):
                continue
            try:
                model = cf.load(directory)
            except (OSError, ValueError, KeyError, TypeError) as exc:  # a broken artifact: keep the old model
                self.failed[catalog] = source
                log.error("CF model %s of catalog %s failed to load: %s: %s", directory, catalog,
                          type(exc).__name__, exc)
                continue
            self.models[catalog] = model
            self.loaded_from[catalog] = directory.name
            if registered is not None:
                self.registered[catalog] = registered
            else:
                self.registered.pop(catalog, None)
            self.loaded_at[catalog] = time.time()
            self.failed.pop(catalog, None)
            changed.append(catalog)
            log.info("CF model of catalog %s: %s (%d items, %d factors)", catalog, self.label(catalog, model),
                     len(model.item_ids), model.factors)
        return changed

    def status(self) -> dict[str, Any]:
        """Readiness detail: the version served per catalog (null when none was trained)."""
        return {"models_root": str(self.models_root),
                "registry": "on" if self.registry is not None else "off",
                "versions": {c: self.version(c) for c in self.catalogs},
                "failed": dict(self.failed), "registry_errors": dict(self.registry_errors)}


async def refresh_now(models: CfModels, *, force: bool = False) -> list[str]:
    """``models.refresh`` off the event loop (it reads directories and loads arrays)."""
    return await anyio.to_thread.run_sync(lambda: models.refresh(force=force))


async def poll(models: CfModels, interval_s: float) -> None:
    """Look for newer versions every ``interval_s`` for ever (a task of the lifespan); a failed round is
    logged and the next one tries again."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await refresh_now(models)
        except Exception:  # noqa: BLE001 - keep serving the models we have; try again next round
            log.exception("CF model refresh failed")


class CatalogItems(Protocol):
    """The items the retriever serves, per catalog (the CF model may know items that are not ingested)."""

    def item(self, catalog: str, item_id: str) -> Item | None: ...

    def known(self, catalog: str) -> Callable[[str], bool]: ...


class RetrieverItems:
    """``CatalogItems`` over the retriever's loaded catalogs (``Retriever.catalogs``: name -> Catalog)."""

    def __init__(self, retriever: Any) -> None:
        self.retriever = retriever

    def item(self, catalog: str, item_id: str) -> Item | None:
        loaded = self.retriever.catalogs.get(catalog)
        return loaded.item(item_id) if loaded is not None else None

    def known(self, catalog: str) -> Callable[[str], bool]:
        loaded = self.retriever.catalogs.get(catalog)
        return loaded.index_of.__contains__ if loaded is not None else (lambda _: False)


@dataclass
class UserState:
    """What Redis holds about a user in one catalog: the fold-in input, what to hide, the recent clicks."""

    history: dict[str, float] = field(default_factory=dict)
    dismissed: set[str] = field(default_factory=set)
    clicks: list[str] = field(default_factory=list)


async def read_user_state(redis: Any, catalog: str, user_id: str, clicks_n: int = CLICK_SEEDS) -> UserState:
    """One round trip (HGETALL, SMEMBERS, LRANGE, all in the user's slot). Raises the Redis error."""
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(rd.user_history_key(user_id, catalog))
    pipe.smembers(rd.user_dismissed_key(user_id, catalog))
    pipe.lrange(rd.user_clicks_key(user_id, catalog), 0, clicks_n - 1)
    history, dismissed, clicks = await pipe.execute()
    parsed: dict[str, float] = {}
    for item, weight in (history or {}).items():
        try:
            value = float(weight)
        except ValueError:
            continue
        if value > 0:
            parsed[item] = value
    return UserState(parsed, set(dismissed or ()), list(clicks or ()))


def click_neighbours(model: cf.CfModel, clicks: Sequence[str]) -> dict[str, float]:
    """item -> Σ over the recent clicks of decay(click rank) × CF similarity; clicks themselves left out."""
    out: dict[str, float] = {}
    seeds = list(dict.fromkeys(clicks))[:CLICK_SEEDS]
    for rank, seed in enumerate(seeds):
        for other, similarity in model.similar_items(seed, NEIGHBOURS_PER_CLICK):
            if other in seeds or similarity <= 0:
                continue
            out[other] = out.get(other, 0.0) + (CLICK_DECAY ** rank) * similarity
    return out


@dataclass(frozen=True)
class Feed:
    items: list[cf.Scored]
    cold_start: bool


def reason_of(sources: Mapping[str, float]) -> str:
    """The source that gave an item most (ties: the first in name order)."""
    return max(sorted(sources), key=lambda name: sources[name]) if sources else "popularity"


def recommend(model: cf.CfModel, state: UserState, k: int, *, exclude: Iterable[str] = (),
              click_weight: float = 0.3, known: Callable[[str], bool] = lambda _: True) -> Feed:
    """The user's feed (pure): ``CfModel.recommend_scored`` (``cf.blend`` of repeat purchases, ALS on the
    folded-in history, bought-together and popularity with the model's weights), plus the CF neighbours of the
    recent clicks (``click_weight``);
    never a dismissed or excluded item, nor one the served catalog does not hold (``known``). A user with no
    history and no click the model knows gets popularity alone (``cold_start``)."""
    excluded = set(exclude) | state.dismissed
    history = {item: w for item, w in state.history.items() if w > 0}
    clicked = click_neighbours(model, state.clicks) if click_weight > 0 else {}
    cold = not history and not clicked
    # exactly what the offline evaluation scores (CfModel.recommend_scored: cf.blend with the model's weights,
    # popularity alone without history), with room for the ids the catalog does not serve, dropped below
    blended = model.recommend_scored(history, k + KNOWN_ROOM, excluded)
    totals = {s.item_id: s.score for s in blended}
    sources = {s.item_id: dict(s.sources) for s in blended}
    top_click = max(clicked.values(), default=0.0)
    if top_click > 0:
        for item, value in clicked.items():
            if item in excluded:
                continue
            contribution = click_weight * value / top_click
            totals[item] = totals.get(item, 0.0) + contribution
            sources.setdefault(item, {})["clicks"] = round(contribution, 6)
    ranked = sorted((pair for pair in totals.items() if known(pair[0])), key=lambda pair: (-pair[1], pair[0]))[:k]
    return Feed([cf.Scored(item, round(score, 6), sources[item]) for item, score in ranked], cold)

