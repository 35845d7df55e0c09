"""The model registry (MLflow, decisions 1000, 1002, 1003): log training runs, register versions, move the
``champion`` / ``challenger`` aliases, download a version once into a local cache, and record what the
automation did in ``model_events``. The only module that imports mlflow, and only when a method needs it."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.settings import REPO_ROOT, PickwiseSettings

if TYPE_CHECKING:
    import asyncpg
    from mlflow import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
RANKER_MODEL = "pickwise-ranker"
# where a version's files sit inside its run's artifacts
ARTIFACT_PATH = "model"
# the tag naming the sha256 of a version's files (bootstrap registration is idempotent on it)
FILES_SHA256_TAG = "files_sha256"
MODEL_ACTIONS = ("registered", "challenger", "promoted", "rolled_back", "rejected")
_COMPLETE_MARKER = ".pickwise-complete"


def cf_model_name(catalog: str) -> str:
    return f"pickwise-cf-{catalog}"


class RegistrySettings(PickwiseSettings):
    """``PICKWISE_MLFLOW_TRACKING_URI`` ("none" turns the registry off: models load from their directories)."""

    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    model_cache_dir: Path = REPO_ROOT / ".pickwise" / "model-cache"
    registry_poll_s: float = Field(default=30.0, gt=0)
    # a registry that is down must fail a call fast: the services keep serving what they have
    registry_timeout_s: float = Field(default=5.0, gt=0)
    registry_max_retries: int = Field(default=1, ge=0)

    @property
    def registry_enabled(self) -> bool:
        return self.mlflow_tracking_uri.strip().lower() not in ("", "none")


@dataclass(frozen=True)
class LocalModel:
    """A registered version's files on local disk."""

    name: str
    version: str
    alias: str | None
    path: Path

    @property
    def label(self) -> str:
        """``pickwise-ranker/3@champion`` (the form ``RerankResponse.ranker_version`` reports)."""
        return f"{self.name}/{self.version}@{self.alias}" if self.alias else f"{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class ModelEvent:
    """One ``model_events`` row (migration 0006)."""

    model_name: str
    version: str
    action: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in MODEL_ACTIONS:
            raise ValueError(f"model event action must be one of {MODEL_ACTIONS}, not {self.action!r}")


def files_sha256(paths: list[Path]) -> str:
    """One digest over the files' names and contents, order-independent (what makes a version "the same")."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def dir_sha256(directory: Path) -> str:
    return files_sha256([p for p in directory.rglob("*") if p.is_file()])


def _already_exists(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_ALREADY_EXISTS"


class Registry:
    """The MLflow registry behind ``settings.mlflow_tracking_uri``. Methods block (HTTP): call them from a
    thread (``anyio.to_thread.run_sync``) in a service. Failures to reach the server raise
    ``DependencyUnavailable(dependency="registry")``."""

    def __init__(self, settings: RegistrySettings | None = None) -> None:
        self.settings = settings or RegistrySettings()
        self._client: MlflowClient | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.registry_enabled

    def client(self) -> MlflowClient:
        if not self.enabled:
            raise DependencyUnavailable("the model registry is off (PICKWISE_MLFLOW_TRACKING_URI=none)",
                                        dependency="registry")
        if self._client is None:
            # read by mlflow's REST client on every request; an operator's own setting wins
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, round(self.settings.registry_timeout_s))))
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.settings.registry_max_retries))
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            # "View run ... at" lines on stdout would break the pipeline commands' JSON output
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
            from mlflow import MlflowClient

            uri = self.settings.mlflow_tracking_uri
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "INVALID_PARAMETER_VALUE"):
                raise
            raise DependencyUnavailable(f"model registry {what} failed: {exc.message}",
                                        dependency="registry") from exc
        except OSError as exc:
            raise DependencyUnavailable(f"model registry {what} failed: {exc}", dependency="registry") from exc

    # -- runs ------------------------------------------------------------------------------------------------
    def experiment_id(self, experiment: str) -> str:
        from mlflow.exceptions import MlflowException

        client = self.client()
        found = self._call("get experiment", client.get_experiment_by_name, experiment)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self._call("create experiment", client.create_experiment, experiment))
        except MlflowException as exc:
            if not _already_exists(exc):
                raise
            return str(self._call("get experiment", client.get_experiment_by_name, experiment).experiment_id)

    def log_run(self, experiment: str, params: Mapping[str, object] | None = None,
                metrics: Mapping[str, float] | None = None, artifact_dir: Path | None = None,
                tags: Mapping[str, str] | None = None) -> str:
        """One finished run: params, metrics, tags and (when given) ``artifact_dir``'s files under ``model/``."""
        from mlflow.entities import Metric, Param, RunTag

        client = self.client()
        run = self._call("create run", client.create_run, self.experiment_id(experiment),
                         tags={k: str(v) for k, v in (tags or {}).items()})
        run_id = str(run.info.run_id)
        import time

        now_ms = int(time.time() * 1000)
        param_list = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        metric_list = [Metric(k, float(v), now_ms, 0) for k, v in (metrics or {}).items()]
        for start in range(0, max(len(param_list), len(metric_list), 1), 100):
            self._call("log batch", client.log_batch, run_id, metrics=metric_list[start:start + 100],
                       params=param_list[start:start + 100], tags=[RunTag("pickwise.source", "pickwise")])
        if artifact_dir is not None:
            self._call("upload artifacts", client.log_artifacts, run_id, str(artifact_dir), ARTIFACT_PATH)
        self._call("finish run", client.set_terminated, run_id)
        return run_id

    def run_metrics(self, run_id: str) -> dict[str, float]:
        run = self._call("get run", self.client().get_run, run_id)
        return {k: float(v) for k, v in run.data.metrics.items()}

    # -- versions and aliases --------------------------------------------------------------------------------
    def register(self, name: str, run_id: str | None = None, artifact_dir: Path | None = None,
                 tags: Mapping[str, str] | None = None, experiment: str = "registry") -> str:
        """A new version of ``name`` from a run's ``model/`` artifacts, or from ``artifact_dir`` (logged as a
        run of its own first). Returns the version number as text."""
        from mlflow.exceptions import MlflowException

        if run_id is None:
            if artifact_dir is None:
                raise ValueError("register needs a run_id or an artifact_dir")
            run_id = self.log_run(experiment, artifact_dir=artifact_dir, tags={"model_name": name})
        client = self.client()
        try:
            self._call("create registered model", client.create_registered_model, name)
        except MlflowException as exc:
            if not _already_exists(exc):
                raise
        run = self._call("get run", client.get_run, run_id)
        source = f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_PATH}"
        version = self._call("create model version", client.create_model_version, name, source, run_id=run_id,
                             tags={k: str(v) for k, v in (tags or {}).items()})
        return str(version.version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call("set alias", self.client().set_registered_model_alias, name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> bool:
        """Remove ``alias`` from ``name``; False when it was not set."""
        from mlflow.exceptions import MlflowException

        if self.alias_version(name, alias) is None:
            return False
        try:
            self._call("delete alias", self.client().delete_registered_model_alias, name, alias)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        return True

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points at, None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            version = self._call("get alias", self.client().get_model_version_by_alias, name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return str(version.version)

    def tag(self, name: str, version: str, key: str, value: str) -> None:
        self._call("set tag", self.client().set_model_version_tag, name, str(version), key, str(value))

    def version(self, name: str, version: str) -> ModelVersionInfo:
        mv = self._call("get version", self.client().get_model_version, name, str(version))
        return _info(mv)

    def versions(self, name: str | None = None) -> list[ModelVersionInfo]:
        """Every version (of ``name``, or of every model), newest first per model."""
        client = self.client()
        query = f"name='{name}'" if name else None
        found: list[ModelVersionInfo] = []
        token: str | None = None
        while True:
            page = self._call("search versions", client.search_model_versions, query, max_results=1000,
                              page_token=token)
            found += [_info(mv) for mv in page]
            token = page.token
            if not token:
                break
        # the search leaves aliases out of its answers (MLflow fills them on get_registered_model only)
        aliases: dict[tuple[str, str], list[str]] = {}
        for model_name in sorted({v.name for v in found}):
            model = self._call("get model", client.get_registered_model, model_name)
            for alias, version in (model.aliases or {}).items():
                aliases.setdefault((model_name, str(version)), []).append(alias)
        found = [replace(v, aliases=tuple(sorted(aliases.get((v.name, v.version), v.aliases)))) for v in found]
        return sorted(found, key=lambda v: (v.name, -int(v.version)))

    def find_version(self, name: str, tag_key: str, tag_value: str) -> str | None:
        """The newest version of ``name`` tagged ``tag_key=tag_value`` (None when there is none)."""
        from mlflow.exceptions import MlflowException

        try:
            matches = [v for v in self.versions(name) if v.tags.get(tag_key) == tag_value]
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return matches[0].version if matches else None

    def version_metric(self, name: str, version: str, metric: str) -> float | None:
        """A metric of the run that produced ``version`` (None when the run did not log it)."""
        info = self.version(name, version)
        if not info.run_id:
            return None
        return self.run_metrics(info.run_id).get(metric)

    # -- files -----------------------------------------------------------------------------------------------
    def fetch(self, name: str, alias: str) -> LocalModel | None:
        """The version ``alias`` points at, downloaded once into ``model_cache_dir/<name>/<version>``; None when
        the alias (or the model) does not exist."""
        version = self.alias_version(name, alias)
        if version is None:
            return None
        return self.fetch_version(name, version, alias=alias)

    def fetch_version(self, name: str, version: str, alias: str | None = None) -> LocalModel:
        target = self.settings.model_cache_dir / name / str(version)
        if (target / _COMPLETE_MARKER).exists():
            return LocalModel(name, str(version), alias, target)
        info = self.version(name, version)
        self.settings.model_cache_dir.mkdir(parents=True, exist_ok=True)
        from mlflow.artifacts import download_artifacts

        staging = Path(tempfile.mkdtemp(prefix=f".{name}-{version}-", dir=self.settings.model_cache_dir))
        try:
            local = Path(self._call("download", download_artifacts, artifact_uri=info.source,
                                    dst_path=str(staging), tracking_uri=self.settings.mlflow_tracking_uri))
            (local / _COMPLETE_MARKER).write_text(json.dumps({"name": name, "version": str(version)}))
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                local.rename(target)
            except OSError:
                # another process finished the same download first
                if not (target / _COMPLETE_MARKER).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return LocalModel(name, str(version), alias, target)

    def ensure_champion(self, name: str, files: list[Path], *, reason: str,
                        postgres_url: str | None = None) -> tuple[str, bool]:
        """Make ``files`` the champion of ``name`` unless the model has a champion already (what ``make run``
        does with the models the repository ships). The version is found by the files' sha256 when it was
        registered before, so a restart registers nothing. Returns (champion version, whether it changed)."""
        current = self.alias_version(name, CHAMPION)
        if current is not None:
            return current, False
        digest = files_sha256(files)
        version = self.find_version(name, FILES_SHA256_TAG, digest)
        if version is None:
            with tempfile.TemporaryDirectory(prefix="pickwise-register-") as staging:
                for path in files:
                    shutil.copy2(path, Path(staging) / path.name)
                version = self.register(name, artifact_dir=Path(staging),
                                        tags={FILES_SHA256_TAG: digest, "source": "bootstrap"})
        self.set_alias(name, CHAMPION, version)
        if postgres_url:
            import asyncio

            asyncio.run(record_model_event(postgres_url, ModelEvent(name, version, "promoted", reason,
                                                                    {"sha256": digest})))
        return version, True

    # -- model_events ----------------------------------------------------------------------------------------
    async def record(self, event: ModelEvent, conn: asyncpg.Connection | str) -> int:
        """Write ``event`` to ``model_events`` through ``conn`` (a connection, or a DSN to open one)."""
        return await record_model_event(conn, event)


async def record_model_event(conn: asyncpg.Connection | str, event: ModelEvent) -> int:
    import asyncpg

    own = isinstance(conn, str)
    connection = await asyncpg.connect(conn) if isinstance(conn, str) else conn
    try:
        row_id = await connection.fetchval(
            "INSERT INTO model_events (model_name, version, action, reason, detail) "
            "VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id",
            event.model_name, str(event.version), event.action, event.reason, json.dumps(event.detail))
    finally:
        if own:
            await connection.close()
    return int(row_id)


def _info(mv: Any) -> ModelVersionInfo:
    return ModelVersionInfo(name=str(mv.name), version=str(mv.version), run_id=mv.run_id or None,
                            source=str(mv.source), tags=dict(mv.tags or {}), aliases=tuple(mv.aliases or ()))


async def ensure_database(admin_url: str, name: str) -> bool:
    """CREATE DATABASE ``name`` through ``admin_url`` unless it exists (the tracking server's backend store in
    compose and Kubernetes, where Postgres is not the embedded one). Returns whether it was created."""
    import asyncpg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: letters, digits and _ only")
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
    finally:
        await conn.close()
    return True


def backend_store_uri(postgres_url: str, database: str) -> str:
    """The tracking server's SQLAlchemy URL: ``postgres_url`` (the services' database) with ``database`` as
    its database and the psycopg2 driver (SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(postgres_url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg2"):
        raise ValueError(f"not a postgresql:// URL: {parts.scheme}://...")
    return urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{database}", parts.query, ""))


def main(argv: list[str] | None = None) -> int:
    """``python -m pickwise_common.registry create-database|serve`` (admin URL: $PICKWISE_POSTGRES_URL): compose
    and Kubernetes run the tracking server with ``serve``, which creates its database first."""
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(prog="python -m pickwise_common.registry")
    parser.add_argument("--admin-url", default=os.environ.get("PICKWISE_POSTGRES_URL", ""),
                        help="a Postgres URL allowed to CREATE DATABASE (default: $PICKWISE_POSTGRES_URL)")
    parser.add_argument("--database", default="mlflow")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create-database", help="create the tracking server's database unless it exists")
    serve = sub.add_parser("serve", help="create the database, then exec the MLflow tracking server on it")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 (a container's server)
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--artifacts", default="/mlflow-artifacts", help="--artifacts-destination")
    serve.add_argument("--allowed-hosts", default="", help="Host headers the server accepts (comma-separated)")
    args = parser.parse_args(argv)
    if not args.admin_url:
        parser.error("--admin-url or PICKWISE_POSTGRES_URL is required")
    created = asyncio.run(ensure_database(args.admin_url, args.database))
    print(f"database {args.database}: {'created' if created else 'exists'}", flush=True)
    if args.command == "serve":
        argv_server = [sys.executable, "-m", "mlflow", "server", "--host", args.host, "--port", str(args.port),
                       "--workers", "1", "--backend-store-uri", backend_store_uri(args.admin_url, args.database),
                       "--artifacts-destination", args.artifacts, "--serve-artifacts"]
        if args.allowed_hosts:
            argv_server += ["--allowed-hosts", args.allowed_hosts]
        os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        os.execv(sys.executable, argv_server)  # noqa: S606 (replaces this process: the server gets the signals)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
