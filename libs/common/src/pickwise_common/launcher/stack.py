"""The whole local stack: embedded infrastructure, topics, migrations, catalog load, six services and the monitor.

Used by ``pickwise run`` (``make run``) and by the test fixtures, so tests exercise the same start-up."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from pickwise_common import cf
from pickwise_common.errors import DependencyUnavailable
from pickwise_common.kafka import ensure_topics
from pickwise_common.launcher.infra import HOST, Infra, InfraConfig, start_infra, wait_mlflow
from pickwise_common.launcher.processes import ManagedProcess, StartupError, Supervisor, free_port, wait_until
from pickwise_common.postgres import apply_migrations
from pickwise_common.settings import REPO_ROOT, KafkaSettings, ModelSettings

log = logging.getLogger("pickwise.launcher")

DEFAULT_API_KEY = "dev-local-key"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    default_port: int
    app_module: str = "app"
    # the request path's CPU-bound services, which `pickwise run` starts with `auto` workers (half the machine's
    # cores, at most 4); test stacks start one of each unless PICKWISE_<SERVICE>_WORKERS says otherwise. The
    # monitor is a singleton (its controller must act once per round) and ignores the setting
    auto_workers: bool = False
    scalable: bool = True

    @property
    def workers_env(self) -> str:
        return f"PICKWISE_{self.name.upper().replace('-', '_')}_WORKERS"

    def workers(self, env: dict[str, str], cpu_count: int | None = None) -> int:
        """Worker processes for this service: ``PICKWISE_<SERVICE>_WORKERS`` (a number or ``auto``), else its
        default: 1 (decision 0910). A bad value is an error at start, naming the variable."""
        if not self.scalable:
            return 1
        raw = env.get(self.workers_env, "1").strip().lower()
        if raw == "auto":
            return max(1, min(4, (cpu_count if cpu_count is not None else os.cpu_count() or 1) // 2))
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= 64:
            raise StartupError(f"{self.workers_env}={raw!r}: expected a number of worker processes 1..64 or 'auto'")
        return value

    @property
    def factory(self) -> str:
        return f"{self.module}.{self.app_module}:create_app"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("retriever", "pickwise_retriever", 8001, auto_workers=True),
    ServiceSpec("reranker", "pickwise_reranker", 8002),
    ServiceSpec("generator", "pickwise_generator", 8003),
    ServiceSpec("session", "pickwise_session", 8004),
    ServiceSpec("event-consumer", "pickwise_event_consumer", 8005),
    ServiceSpec("gateway", "pickwise_gateway", 8000, auto_workers=True),
    # after the services: experiment metrics and the rollout controller (pickwise-pipeline, decision 1006)
    ServiceSpec("monitor", "pickwise_pipeline", 8006, app_module="monitor", scalable=False),
)


@dataclass
class StackConfig:
    data_dir: Path = Path(".pickwise")
    infra: InfraConfig | None = None
    service_ports: dict[str, int] = field(default_factory=lambda: {s.name: s.default_port for s in SERVICES})
    services: tuple[str, ...] = tuple(s.name for s in SERVICES)
    extra_env: dict[str, str] = field(default_factory=dict)
    load_catalog: bool = True
    ready_timeout_s: float = 120.0

    @classmethod
    def on_free_ports(cls, data_dir: Path, **kwargs: object) -> StackConfig:
        """Everything on free ports under ``data_dir``: runs beside a ``make run`` stack."""
        infra = InfraConfig(data_dir, broker_port=free_port(), redis_port=free_port(),
                            postgres_port=free_port(), milvus_port=free_port(), mlflow_port=free_port())
        ports = {s.name: free_port() for s in SERVICES}
        return cls(data_dir=data_dir, infra=infra, service_ports=ports, **kwargs)  # type: ignore[arg-type]

    def infra_config(self) -> InfraConfig:
        return self.infra or InfraConfig(self.data_dir)

    def url(self, service: str) -> str:
        return f"http://{HOST}:{self.service_ports[service]}"

    def service_env(self) -> dict[str, str]:
        """The caller's environment passed through, plus where everything is."""
        env = dict(os.environ) | {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        env.setdefault("PICKWISE_API_KEYS", DEFAULT_API_KEY)
        # a local stack: plain API keys are accepted and the web page embeds one (decision 0751)
        env.setdefault("PICKWISE_ENVIRONMENT", "local")
        env |= self.infra_config().env()
        for spec in SERVICES:
            env[f"PICKWISE_{spec.name.upper().replace('-', '_')}_URL"] = self.url(spec.name)
        env |= self.extra_env
        return env


@dataclass
class Stack:
    config: StackConfig
    infra: Infra | None = None
    services: dict[str, ManagedProcess] = field(default_factory=dict)
    owns_infra: bool = True
    supervisor: Supervisor | None = None

    def url(self, service: str) -> str:
        return self.config.url(service)

    def env(self) -> dict[str, str]:
        return self.config.service_env()

    def start_service(self, name: str) -> ManagedProcess:
        spec = next(s for s in SERVICES if s.name == name)
        env = self.env()
        env |= {"PICKWISE_SERVICE_NAME": name, "PICKWISE_PORT": str(self.config.service_ports[name]),
                "PICKWISE_HOST": HOST, "PICKWISE_WORKERS": str(spec.workers(env))}
        proc = ManagedProcess(name, [sys.executable, "-m", "pickwise_common.serve", spec.factory],
                              self.config.data_dir / "logs" / f"{name}.log", env=env).start()
        self.services[name] = proc
        return proc

    def start_extra(self, name: str, env: dict[str, str] | None = None,
                    wait: bool = True) -> tuple[ManagedProcess, str]:
        """Another instance of a service on a free port with overridden settings (e.g. a gateway whose
        reranker URL points nowhere), for tests that must not disturb the shared stack. Stop it yourself."""
        spec = next(s for s in SERVICES if s.name == name)
        port = free_port()
        full_env = self.env() | {"PICKWISE_SERVICE_NAME": name, "PICKWISE_PORT": str(port),
                                 "PICKWISE_HOST": HOST, "PICKWISE_WORKERS": "1"} | (env or {})
        proc = ManagedProcess(f"{name}-{port}", [sys.executable, "-m", "pickwise_common.serve", spec.factory],
                              self.config.data_dir / "logs" / f"{name}-{port}.log", env=full_env).start()
        url = f"http://{HOST}:{port}"
        if wait:
            with httpx.Client(timeout=2.0) as client:
                def ready() -> bool:
                    try:
                        return client.get(url + "/readyz").status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_until(ready, timeout_s=self.config.ready_timeout_s, what=f"extra {name}", process=proc,
                           interval_s=0.1)
        return proc, url

    def stop_service(self, name: str) -> None:
        proc = self.services.pop(name, None)
        if proc is not None:
            proc.stop()

    def wait_ready(self, names: list[str], timeout_s: float | None = None) -> None:
        timeout_s = timeout_s or self.config.ready_timeout_s
        with httpx.Client(timeout=2.0) as client:
            for name in names:
                def ready(name: str = name) -> bool:
                    try:
                        return client.get(self.url(name) + "/readyz").status_code == 200
                    except httpx.HTTPError:
                        return False

                wait_until(ready, timeout_s=timeout_s, what=f"service {name}", process=self.services.get(name),
                           interval_s=0.1)

    def supervise(self) -> Supervisor:
        """Restart a service that crashes (see ``Supervisor``); ``start_stack`` calls it once all are ready."""
        if self.supervisor is None:
            self.supervisor = Supervisor(lambda: self.services).start()
        return self.supervisor

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.hold()
        # the gateway first (stop taking requests), then the rest, then the infrastructure
        for name in reversed([s.name for s in SERVICES]):
            self.stop_service(name)
        if self.infra is not None and self.owns_infra:
            self.infra.stop()
        if self.supervisor is not None:
            self.supervisor.close()


async def prepare_infra(cfg: InfraConfig) -> None:
    """Topics and schema, so services start against a ready broker and database."""
    await ensure_topics(KafkaSettings(kafka_bootstrap=cfg.kafka_bootstrap))
    conn = await asyncpg.connect(cfg.postgres_url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


# the catalogs `pickwise run` loads, in order: flipkart first (an ingest that rebuilds the shared Milvus collection
# for a new schema drops the other catalogs' rows, which their own ingest then re-loads)
STACK_CATALOGS = ("flipkart", "retail")


def load_catalog(config: StackConfig, env: dict[str, str]) -> None:
    """Run the pipeline's ingest for each catalog (idempotent; it skips a catalog whose file is unchanged)."""
    if importlib.util.find_spec("pickwise_pipeline") is None:
        raise StartupError("pickwise-pipeline is not installed: run `make install`")
    log_path = config.data_dir / "logs" / "ingest.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for catalog in STACK_CATALOGS:
        with log_path.open("ab") as out:
            result = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "ingest", "--catalog", catalog,
                                     "--if-changed"], env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            raise StartupError(f"catalog ingest of {catalog} failed ({result.returncode}):\n{tail}")


# The purchase history `pickwise run` loads into a fresh stack (decision 0817): the retail invoice lines up to the
# end of the evaluation's train window, so `make eval-cf TARGET=gateway` scores the running stack honestly
# (PICKWISE_RETAIL_HISTORY_UNTIL: another day, or "all" for the whole file).
RETAIL_HISTORY_UNTIL = "2011-10-31"


def bootstrap_history(config: StackConfig, env: dict[str, str]) -> threading.Thread:
    """In the background, once the stack serves: import the retail history (a re-import adds nothing) and
    train the retail CF model when none exists. The retriever picks the model up by itself (decision 0814);
    until then the feed is the content feed. Output in ``<data_dir>/logs/history.log``."""
    until = os.environ.get("PICKWISE_RETAIL_HISTORY_UNTIL", RETAIL_HISTORY_UNTIL)
    window = [] if until == "all" else ["--until", until]
    models_dir = Path(env.get("PICKWISE_CF_MODELS_DIR") or env.get("PICKWISE_MODELS_DIR")
                      or ModelSettings().models_dir)
    log_path = config.data_dir / "logs" / "history.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def step(*args: str) -> bool:
        with log_path.open("ab") as out:
            code = subprocess.run([sys.executable, "-m", "pickwise_pipeline", *args], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, check=False).returncode
        if code != 0:
            log.warning("%s failed (exit %s): see %s", args[0], code, log_path)
        return code == 0

    def run() -> None:
        started = time.perf_counter()
        if not step("import-interactions", "--catalog", "retail", *window):
            return
        if cf.latest_version_dir(models_dir, "retail") is None:
            # train-cf registers pickwise-cf-retail itself (first version: champion)
            if not step("train-cf", "--catalog", "retail", *window, "--models-dir", str(models_dir)):
                return
        else:
            try:
                bootstrap_cf_champion(env, "retail", models_dir)
            except Exception as exc:  # the registry is optional to the feed: log and go on
                log.warning("registering the retail CF model failed: %s", exc)
        log.info("retail purchase history and CF model ready in %.0f s (log: %s)",
                 time.perf_counter() - started, log_path)

    thread = threading.Thread(target=run, name="pickwise-history", daemon=True)
    thread.start()
    return thread


def shipped_ranker_files(model_dir: Path) -> list[Path]:
    """The newest ``ranker-v*.txt`` in ``model_dir`` and its ``.json`` ([] when there is none)."""
    newest = sorted(model_dir.glob("ranker-v*.txt"), key=lambda p: p.stem, reverse=True)
    if not newest:
        return []
    return [p for p in (newest[0], newest[0].with_suffix(".json")) if p.exists()]


def bootstrap_registry(env: dict[str, str]) -> str | None:
    """Register the ranker the repository ships (``models/ranker``'s newest file pair) as ``pickwise-ranker``
    champion when the registry has none, so a fresh stack serves by alias from the start (decision 1003).
    Idempotent: the same files are never registered twice. Returns the champion version (None: no registry or
    no model)."""
    from pickwise_common.registry import RANKER_MODEL, Registry, RegistrySettings

    settings = RegistrySettings(mlflow_tracking_uri=env.get("PICKWISE_MLFLOW_TRACKING_URI", "none"))
    if not settings.registry_enabled:
        return None
    model_dir = Path(env.get("PICKWISE_RANKER_MODEL_DIR") or REPO_ROOT / "models" / "ranker")
    files = shipped_ranker_files(model_dir)
    if not files:
        log.warning("no ranker-v*.txt in %s: pickwise-ranker has no champion to register", model_dir)
        return None
    started = time.perf_counter()
    version, changed = Registry(settings).ensure_champion(RANKER_MODEL, files, reason="shipped with the repository",
                                                          postgres_url=env.get("PICKWISE_POSTGRES_URL"))
    log.info("pickwise-ranker champion: version %s (%s, %.1f s)", version,
             f"registered from {files[0].name}" if changed else "already set", time.perf_counter() - started)
    return version


def bootstrap_cf_champion(env: dict[str, str], catalog: str, models_dir: Path) -> str | None:
    """A CF model trained before the registry existed (or without it) becomes ``pickwise-cf-<catalog>``
    champion when the registry has none; idempotent like ``bootstrap_registry``."""
    from pickwise_common.registry import Registry, RegistrySettings, cf_model_name

    settings = RegistrySettings(mlflow_tracking_uri=env.get("PICKWISE_MLFLOW_TRACKING_URI", "none"))
    latest = cf.latest_version_dir(models_dir, catalog)
    if not settings.registry_enabled or latest is None:
        return None
    files = sorted(p for p in latest.iterdir() if p.is_file())
    version, _ = Registry(settings).ensure_champion(cf_model_name(catalog), files, reason="trained before the registry",
                                                    postgres_url=env.get("PICKWISE_POSTGRES_URL"))
    return version


def start_stack(config: StackConfig, *, infra: Infra | None = None) -> Stack:
    """Start (or reuse) the infrastructure, then the services, and wait until every /readyz is green."""
    stack = Stack(config, infra=infra, owns_infra=infra is None)
    try:
        started = time.perf_counter()
        if stack.infra is None:
            # MLflow's start (30-40 s) overlaps the migrations and the catalog load; waited for below
            stack.infra = start_infra(config.infra_config(), wait_for_mlflow=False)
            log.info("infrastructure up in %.1f s", time.perf_counter() - started)
        config.infra = stack.infra.config
        asyncio.run(prepare_infra(stack.infra.config))
        if config.load_catalog:
            load_catalog(config, stack.env())
        # the services load their models by alias from the registry: it answers before they start
        mlflow_s = wait_mlflow(stack.infra)
        if mlflow_s is not None:
            log.info("mlflow up %.1f s after its start", mlflow_s)
        try:
            bootstrap_registry(stack.env())
        except DependencyUnavailable as exc:  # the reranker then serves models/ranker from its directory
            log.warning("registering the shipped ranker failed: %s", exc)
        for name in config.services:
            stack.start_service(name)
        stack.wait_ready(list(config.services))
        stack.supervise()
        log.info("stack ready in %.1f s", time.perf_counter() - started)
    except BaseException:
        stack.stop()
        raise
    return stack
