"""The ``monitor`` process (decision 1006): a small service (``/healthz``, ``/readyz``, ``/metrics`` on
``PICKWISE_MONITOR_PORT``, default 8006) that runs periodic jobs: the experiment statistics exported as metrics
and the rollout controller. A job is one entry of ``periodic_jobs``; a failing run is logged and counted, and the
job runs again at its next interval."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import asyncpg
from fastapi import FastAPI
from prometheus_client import Counter, Gauge
from pydantic import Field

from pickwise_common.app import package_version, service_app
from pickwise_common.postgres import create_pool
from pickwise_common.registry import CHAMPION, RANKER_MODEL, Registry, RegistrySettings
from pickwise_common.settings import PostgresSettings, ServiceSettings
from pickwise_pipeline import drift, experiments, rollout

log = logging.getLogger("pickwise.monitor")

DEFAULT_PORT = 8006

EXPERIMENT_IMPRESSIONS = Gauge("pickwise_experiment_impressions", "Impressions per variant in the window",
                               ["experiment", "variant"])
EXPERIMENT_RATE = Gauge("pickwise_experiment_rate", "Per-variant rate (share of impressions) with its Wilson 95 % "
                        "interval", ["experiment", "variant", "metric", "bound"])
EXPERIMENT_CTR_P_VALUE = Gauge("pickwise_experiment_ctr_p_value", "Two-proportion z-test p-value of the "
                               "variant's CTR against the control variant", ["experiment", "variant"])
RANKER_IMPRESSIONS = Gauge("pickwise_experiment_ranker_impressions", "Impressions per ranker version in the window",
                           ["model_version"])
RANKER_RATE = Gauge("pickwise_experiment_ranker_rate", "Per-ranker-version rate with its Wilson 95 % interval",
                    ["model_version", "metric", "bound"])
INTERLEAVING = Gauge("pickwise_experiment_interleaving", "Team-draft interleaving: impressions won by team A "
                     "(champion), B (challenger), ties", ["experiment", "outcome"])
JOB_RUNS = Counter("pickwise_monitor_job_runs", "Runs of the monitor's periodic jobs", ["job", "outcome"])
JOB_LAST_SUCCESS = Gauge("pickwise_monitor_job_last_success_timestamp_seconds", "When the job last succeeded",
                         ["job"])
JOB_DURATION = Gauge("pickwise_monitor_job_duration_seconds", "How long the job's last run took", ["job"])
DRIFT_METRICS = drift.DriftMetrics()  # pickwise_drift_* (decision 1008)


class MonitorSettings(ServiceSettings, PostgresSettings, rollout.RolloutSettings, RegistrySettings,
                      drift.DriftSettings):
    port: int = DEFAULT_PORT
    experiment_interval_s: float = Field(default=30.0, gt=0)
    experiment_window_s: float = Field(default=3600.0, gt=0, description="the exported statistics' window")
    experiment_control: str = experiments.CONTROL_VARIANT
    experiment_catalog: str | None = None
    rollout_interval_s: float = Field(default=60.0, gt=0)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    interval_s: float
    run: Callable[[], Awaitable[object]]


def export_experiments(report: experiments.ExperimentReport) -> None:
    """Replace the experiment gauges with ``report`` (no await inside: a scrape never sees a half-set)."""
    for gauge in (EXPERIMENT_IMPRESSIONS, EXPERIMENT_RATE, EXPERIMENT_CTR_P_VALUE, RANKER_IMPRESSIONS, RANKER_RATE,
                  INTERLEAVING):
        gauge.clear()
    for v in report.variants:
        EXPERIMENT_IMPRESSIONS.labels(v.experiment, v.variant).set(v.impressions)
        if v.p_value_ctr is not None:
            EXPERIMENT_CTR_P_VALUE.labels(v.experiment, v.variant).set(v.p_value_ctr)
        for metric in experiments.METRICS:
            rate = v.rate(metric)
            for bound, value in (("estimate", rate.estimate), ("lower", rate.lower), ("upper", rate.upper)):
                EXPERIMENT_RATE.labels(v.experiment, v.variant, metric, bound).set(value)
    for r in report.rankers:
        label = r.ranker or "(none)"
        RANKER_IMPRESSIONS.labels(label).set(r.impressions)
        for metric in experiments.METRICS:
            rate = r.rate(metric)
            for bound, value in (("estimate", rate.estimate), ("lower", rate.lower), ("upper", rate.upper)):
                RANKER_RATE.labels(label, metric, bound).set(value)
    for i in report.interleaving:
        for outcome, value in (("wins_a", i.wins_a), ("wins_b", i.wins_b), ("ties", i.ties),
                               ("impressions", i.impressions)):
            INTERLEAVING.labels(i.experiment, outcome).set(value)


async def experiments_job(pool: asyncpg.Pool, settings: MonitorSettings) -> experiments.ExperimentReport:
    now = datetime.now(UTC)
    report = await experiments.compute(pool, since=now - timedelta(seconds=settings.experiment_window_s), until=now,
                                       catalog=settings.experiment_catalog, control=settings.experiment_control)
    export_experiments(report)
    return report


async def rollout_job(pool: asyncpg.Pool, registry: Registry, settings: MonitorSettings) -> dict[str, object]:
    return dict(await rollout.tick(pool, registry, settings))


def periodic_jobs(pool: asyncpg.Pool, registry: Registry, settings: MonitorSettings) -> list[PeriodicJob]:
    """The monitor's jobs; add one line per new job."""
    jobs = [PeriodicJob("experiments", settings.experiment_interval_s, lambda: experiments_job(pool, settings)),
            PeriodicJob("drift", settings.drift_interval_s, lambda: drift.drift_job(pool, DRIFT_METRICS, settings))]
    if registry.enabled:
        jobs.append(PeriodicJob("rollout", settings.rollout_interval_s, lambda: rollout_job(pool, registry, settings)))
    return jobs


async def run_once(job: PeriodicJob) -> bool:
    """One run, counted and timed; a failure is logged, not raised (the next interval retries)."""
    started = time.perf_counter()
    try:
        await job.run()
    except asyncio.CancelledError:
        raise
    except Exception:
        JOB_RUNS.labels(job.name, "failed").inc()
        log.exception("monitor job %s failed", job.name)
        return False
    finally:
        JOB_DURATION.labels(job.name).set(time.perf_counter() - started)
    JOB_RUNS.labels(job.name, "ok").inc()
    JOB_LAST_SUCCESS.labels(job.name).set(time.time())
    return True


async def run_periodically(job: PeriodicJob) -> None:
    while True:
        await run_once(job)
        await asyncio.sleep(job.interval_s)


def create_app(settings: MonitorSettings | None = None) -> FastAPI:
    settings = settings or MonitorSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings, migrate=True)
        registry = Registry(settings)
        app.state.readiness.add("postgres", lambda: pool.fetchval("SELECT 1"))
        if registry.enabled:
            app.state.readiness.add("registry", lambda: anyio.to_thread.run_sync(
                registry.alias_version, RANKER_MODEL, CHAMPION), required=False)
        tasks = [asyncio.create_task(run_periodically(job), name=f"monitor-{job.name}")
                 for job in periodic_jobs(pool, registry, settings)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await pool.close()

    return service_app("monitor", settings, lifespan=lifespan, title="Pickwise monitor",
                       description="Experiment metrics and the rollout controller (decision 1006)",
                       version_=package_version("pickwise-pipeline"))


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    # the launcher and the chart set PICKWISE_PORT; by hand, PICKWISE_MONITOR_PORT or --port
    os.environ["PICKWISE_PORT"] = str(args.port)
    os.environ.setdefault("PICKWISE_SERVICE_NAME", "monitor")
    settings = MonitorSettings()
    uvicorn.run("pickwise_pipeline.monitor:create_app", factory=True, host=settings.host, port=settings.port,
                log_config=None, access_log=False, timeout_graceful_shutdown=int(settings.shutdown_grace_s),
                lifespan="on")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("monitor", help="run the monitor process: experiment metrics, rollout "
                                                   "controller (/healthz, /readyz, /metrics)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PICKWISE_MONITOR_PORT", DEFAULT_PORT)),
                        help="listen port (default PICKWISE_MONITOR_PORT, else 8006)")
    parser.set_defaults(func=_serve)
