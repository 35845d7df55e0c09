"""The rollout controller (decision 1006): compares the registered challenger ranker with the champion on live
impressions since the challenger alias was set, rolls it back on a guard breach and promotes it once it held.

``decide`` is pure (stats in, decision out); ``tick`` reads the registry and Postgres, exports the guards and
applies a decision (registry alias and tag, ``model_events`` row, metric, log)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import anyio.to_thread
import asyncpg
from prometheus_client import Counter, Gauge
from pydantic import Field

from pickwise_common.registry import ModelEvent, Registry, RegistrySettings, record_model_event
from pickwise_common.settings import PickwiseSettings, PostgresSettings
from pickwise_pipeline import experiments

log = logging.getLogger("pickwise.rollout")

RANKER_MODEL = "pickwise-ranker"
CHAMPION = "champion"
CHALLENGER = "challenger"

ROLLOUT_ACTIONS = Counter("pickwise_rollout_actions", "Rollbacks and promotions of a challenger, by reason",
                          ["model", "action", "reason"])
CHALLENGER_INFO = Gauge("pickwise_rollout_challenger_info", "1 while this challenger version is live",
                        ["model", "version"])
GUARD = Gauge("pickwise_rollout_guard", "The rollout guards of the live challenger: value and limit",
              ["model", "version", "guard", "stat"])


class RolloutSettings(PickwiseSettings):
    """``PICKWISE_ROLLOUT_*``: the guards of decision 1006."""

    rollout_models: list[str] = Field(default_factory=lambda: [RANKER_MODEL])
    rollout_min_impressions: int = Field(default=500, ge=1)
    rollout_max_p95_ms: float = Field(default=300.0, gt=0)
    rollout_max_error_rate: float = Field(default=0.05, ge=0, le=1)
    rollout_ctr_sigmas: float = Field(default=2.0, ge=0)
    rollout_window_s: float = Field(default=3600.0, ge=0)
    # the variant whose fusion the challenger variant reuses (the gateway's control: "A", else the first)
    rollout_control_variant: str = "A"

    def limits(self) -> Limits:
        return Limits(min_impressions=self.rollout_min_impressions, max_p95_ms=self.rollout_max_p95_ms,
                      max_error_rate=self.rollout_max_error_rate, ctr_sigmas=self.rollout_ctr_sigmas,
                      window_s=self.rollout_window_s)


@dataclass(frozen=True)
class Limits:
    min_impressions: int = 500
    max_p95_ms: float = 300.0
    max_error_rate: float = 0.05
    ctr_sigmas: float = 2.0
    window_s: float = 3600.0


@dataclass(frozen=True)
class Arm:
    """What one model version served in the window (from ``experiments.GroupStats``)."""

    version: str
    impressions: int = 0
    clicked: int = 0
    timed: int = 0
    p95_latency_ms: float | None = None
    errors: int = 0

    @property
    def ctr(self) -> float:
        return self.clicked / self.impressions if self.impressions else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class Guard:
    name: Literal["ctr", "p95_latency_ms", "error_rate"]
    value: float
    limit: float
    breached: bool


@dataclass(frozen=True)
class Decision:
    action: Literal["hold", "rolled_back", "promoted"]
    reason: str  # metric label: the breached guard, "held" (promotion) or why it holds
    detail: str  # the numbers, for the MLflow tag, the model_events row and the log
    guards: list[Guard] = field(default_factory=list)


def decide(challenger: Arm, champion: Arm | None, *, elapsed_s: float, limits: Limits) -> Decision:
    """Roll back on the first breached guard (error rate, p95 latency, CTR), promote once the challenger held for
    ``window_s`` with enough impressions, else hold. Every guard needs ``min_impressions`` of the challenger;
    the CTR guard also needs them of the champion and breaches when CTR_challenger < CTR_champion − k·σ with σ
    the standard deviation of the difference of the two proportions (unpooled)."""
    if challenger.impressions < limits.min_impressions:
        return Decision("hold", "too_few_impressions",
                        f"{challenger.impressions} of {limits.min_impressions} impressions")
    guards = [Guard("error_rate", challenger.error_rate, limits.max_error_rate,
                    challenger.error_rate > limits.max_error_rate)]
    if challenger.timed >= limits.min_impressions and challenger.p95_latency_ms is not None:
        guards.append(Guard("p95_latency_ms", challenger.p95_latency_ms, limits.max_p95_ms,
                            challenger.p95_latency_ms > limits.max_p95_ms))
    ctr_judged = champion is not None and champion.impressions >= limits.min_impressions
    sigma = 0.0
    if champion is not None and ctr_judged:
        sigma = experiments.difference_sigma(challenger.clicked, challenger.impressions, champion.clicked,
                                             champion.impressions)
        floor = champion.ctr - limits.ctr_sigmas * sigma
        guards.append(Guard("ctr", challenger.ctr, floor, challenger.ctr < floor))
    breached = [g for g in guards if g.breached]
    if breached:
        first = breached[0]
        return Decision("rolled_back", first.name, _describe(first, challenger, champion, sigma, limits), guards)
    if champion is not None and not ctr_judged:
        return Decision("hold", "champion_too_few_impressions",
                        f"champion {champion.version}: {champion.impressions} of {limits.min_impressions} "
                        "impressions", guards)
    if elapsed_s < limits.window_s:
        return Decision("hold", "window_open", f"held {elapsed_s:.0f} of {limits.window_s:.0f} s", guards)
    vs = "" if champion is None else (f" vs champion {champion.version} CTR {champion.ctr:.4f} "
                                      f"({champion.impressions} impressions)")
    return Decision("promoted", "held",
                    f"held {elapsed_s:.0f} s over {challenger.impressions} impressions: CTR {challenger.ctr:.4f}"
                    f"{vs}, error rate {challenger.error_rate:.4f}, p95 {_ms(challenger.p95_latency_ms)}", guards)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _describe(guard: Guard, challenger: Arm, champion: Arm | None, sigma: float, limits: Limits) -> str:
    if guard.name == "ctr" and champion is not None:
        return (f"CTR {challenger.ctr:.4f} < champion {champion.ctr:.4f} - {limits.ctr_sigmas:g} sigma "
                f"(sigma {sigma:.4f}, floor {guard.limit:.4f}) over {challenger.impressions} vs "
                f"{champion.impressions} impressions")
    if guard.name == "p95_latency_ms":
        return f"p95 latency {guard.value:.0f} ms > {guard.limit:.0f} ms over {challenger.timed} requests"
    return (f"error rate {guard.value:.4f} > {guard.limit:.4f} ({challenger.errors} of {challenger.impressions} "
            "impressions)")


_RANKER_VERSION = re.compile(r"^(?P<name>[^/@]+)/(?P<version>[^/@]+)(?:@(?P<alias>.+))?$")


def arm_of(report: experiments.ExperimentReport, model: str, version: str, alias: str) -> Arm:
    """The version's impressions: those labelled ``<model>/<version>@<alias>``; when there are none, every label
    of that version merged (p95 = the largest of theirs, the conservative side)."""
    matches = []
    for stats in report.rankers:
        parsed = _RANKER_VERSION.match(stats.ranker)
        if parsed and parsed["name"] == model and parsed["version"] == version:
            if parsed["alias"] == alias:
                matches = [stats]
                break
            matches.append(stats)
    if not matches:
        return Arm(version)
    p95s = [m.p95_latency_ms for m in matches if m.p95_latency_ms is not None]
    return Arm(version, impressions=sum(m.impressions for m in matches), clicked=sum(m.clicked for m in matches),
               timed=sum(m.timed for m in matches), p95_latency_ms=max(p95s) if p95s else None,
               errors=sum(m.errors for m in matches))


class AliasRegistry(Protocol):
    """The part of ``pickwise_common.registry.Registry`` (decision 1000) the controller uses."""

    def alias_version(self, name: str, alias: str) -> str | None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> object: ...

    def tag(self, name: str, version: str, key: str, value: str) -> None: ...


async def challenger_since(conn: asyncpg.Connection | asyncpg.Pool, model: str, version: str) -> datetime:
    """When ``version`` became challenger: its latest ``challenger`` model_events row newer than any rollback or
    promotion of it; without one, the controller records now (first seen) and counts from there."""
    row = await conn.fetchrow(
        """SELECT ts FROM model_events WHERE model_name = $1 AND version = $2 AND action = 'challenger'
               AND ts > coalesce((SELECT max(ts) FROM model_events WHERE model_name = $1 AND version = $2
                                      AND action IN ('rolled_back', 'promoted')), '-infinity')
           ORDER BY ts DESC LIMIT 1""", model, version)
    if row is not None:
        return row["ts"]
    return await conn.fetchval(
        """INSERT INTO model_events (model_name, version, action, reason, detail)
           VALUES ($1, $2, 'challenger', 'first seen as challenger by the rollout controller', '{}'::jsonb)
           RETURNING ts""", model, version)


def _export(model: str, version: str, decision: Decision) -> None:
    for guard in decision.guards:
        GUARD.labels(model, version, guard.name, "value").set(guard.value)
        GUARD.labels(model, version, guard.name, "limit").set(guard.limit)


def _forget(model: str, version: str) -> None:
    """Drop the gauges of a challenger that is no longer live."""
    for labels in list(CHALLENGER_INFO._metrics):  # noqa: SLF001 - prometheus_client has no public label listing
        if labels[0] == model and labels[1] != version:
            CHALLENGER_INFO.remove(*labels)
    for labels in list(GUARD._metrics):  # noqa: SLF001
        if labels[0] == model and labels[1] != version:
            GUARD.remove(*labels)


async def apply(conn: asyncpg.Connection | asyncpg.Pool, registry: AliasRegistry, model: str, version: str,
                decision: Decision, stats: dict[str, Any]) -> None:
    """Carry a rollback or promotion out: registry first (what serving follows), then the record."""
    if decision.action == "rolled_back":
        await anyio.to_thread.run_sync(registry.delete_alias, model, CHALLENGER)
        await anyio.to_thread.run_sync(registry.tag, model, version, "rollback_reason", decision.detail)
    elif decision.action == "promoted":
        await anyio.to_thread.run_sync(registry.set_alias, model, CHAMPION, version)
        await anyio.to_thread.run_sync(registry.delete_alias, model, CHALLENGER)
        await anyio.to_thread.run_sync(registry.tag, model, version, "promotion_reason", decision.detail)
    else:
        return
    event = ModelEvent(model, version, decision.action, decision.detail, stats)
    await record_model_event(conn, event)  # type: ignore[arg-type]  # a pool answers fetchval like a connection
    ROLLOUT_ACTIONS.labels(model, decision.action, decision.reason).inc()
    _forget(model, "")
    log.warning("%s %s version %s: %s", decision.action.replace("_", " "), model, version, decision.detail)


async def tick(conn: asyncpg.Connection | asyncpg.Pool, registry: AliasRegistry, settings: RolloutSettings,
               *, now: datetime | None = None, models: Sequence[str] | None = None) -> dict[str, Decision]:
    """One round of the controller over each model with a challenger: decision per model (applied)."""
    now = now or datetime.now(UTC)
    decisions: dict[str, Decision] = {}
    limits = settings.limits()
    for model in models or settings.rollout_models:
        challenger = await anyio.to_thread.run_sync(registry.alias_version, model, CHALLENGER)
        if challenger is None:
            _forget(model, "")
            continue
        champion = await anyio.to_thread.run_sync(registry.alias_version, model, CHAMPION)
        since = await challenger_since(conn, model, challenger)
        # like with like: the champion on the control variant (the challenger variant's fusion); all champion
        # impressions when the control variant has too few (another experiment's variant names)
        report = await experiments.compute(conn, since=since, until=now,
                                           variants=[settings.rollout_control_variant, CHALLENGER])
        challenger_arm = arm_of(report, model, challenger, CHALLENGER)
        champion_arm = arm_of(report, model, champion, CHAMPION) if champion and champion != challenger else None
        if champion_arm is not None and champion_arm.impressions < limits.min_impressions and champion:
            champion_arm = arm_of(await experiments.compute(conn, since=since, until=now), model, champion, CHAMPION)
        decision = decide(challenger_arm, champion_arm, elapsed_s=(now - since).total_seconds(), limits=limits)
        _forget(model, challenger)
        CHALLENGER_INFO.labels(model, challenger).set(1)
        _export(model, challenger, decision)
        stats = {"since": since.isoformat(), "until": now.isoformat(), "challenger": asdict(challenger_arm),
                 "champion": None if champion_arm is None else asdict(champion_arm),
                 "guards": [asdict(g) for g in decision.guards], "limits": asdict(limits)}
        await apply(conn, registry, model, challenger, decision, stats)
        decisions[model] = decision
    return decisions


class RolloutCommandSettings(PostgresSettings, RolloutSettings):
    """What ``pickwise-pipeline rollout`` reads: Postgres, the guards (the registry's settings are its own)."""


async def tick_once(postgres_url: str, registry: AliasRegistry, settings: RolloutSettings, *,
                    models: Sequence[str] | None = None, connect_timeout_s: float = 10.0) -> dict[str, Decision]:
    """One round of the controller on a connection of its own (what ``pickwise-pipeline rollout`` runs)."""
    conn = await asyncpg.connect(postgres_url, timeout=connect_timeout_s)
    try:
        return await tick(conn, registry, settings, models=models)
    finally:
        await conn.close()


def _run(args: argparse.Namespace) -> int:
    settings = RolloutCommandSettings()
    decisions = asyncio.run(tick_once(settings.postgres_url.get_secret_value(), Registry(RegistrySettings()),
                                      settings, connect_timeout_s=settings.postgres_connect_timeout_ms / 1000))
    if args.json:
        print(json.dumps({model: asdict(d) for model, d in decisions.items()}))
    else:
        for model, d in decisions.items():
            print(f"{model}: {d.action} ({d.reason}): {d.detail}")
        if not decisions:
            print("no challenger registered")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rollout", help="one round of the rollout controller: roll back or promote "
                                                   "the challenger per the guards (PICKWISE_ROLLOUT_*)")
    parser.add_argument("--json", action="store_true", help="the decisions as one JSON object")
    parser.set_defaults(func=_run)
