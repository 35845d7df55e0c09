"""``pickwise`` command: ``pickwise run`` starts the whole local stack in the foreground and stops it all
on Ctrl-C / SIGTERM; ``pickwise infra`` starts only the embedded infrastructure; ``pickwise keys hash <key>``
prints the record of an API key for ``PICKWISE_API_KEYS``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from pickwise_common.api_keys import ApiKey, digest
from pickwise_common.launcher.infra import InfraConfig, start_infra
from pickwise_common.launcher.processes import StartupError
from pickwise_common.launcher.stack import DEFAULT_API_KEY, SERVICES, StackConfig, bootstrap_history, start_stack

log = logging.getLogger("pickwise.launcher")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pickwise", description="Run Pickwise locally, no Docker needed.")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PICKWISE_STACK_DIR", ".pickwise")),
                        help="where Postgres, Redis, Milvus data and the logs live (env PICKWISE_STACK_DIR)")
    parser.add_argument("--broker-port", type=int, default=_env_int("PICKWISE_BROKER_PORT", 9092))
    parser.add_argument("--redis-port", type=int, default=_env_int("PICKWISE_REDIS_PORT", 6379))
    parser.add_argument("--postgres-port", type=int, default=_env_int("PICKWISE_POSTGRES_PORT", 5432))
    parser.add_argument("--milvus-port", type=int, default=_env_int("PICKWISE_MILVUS_PORT", 19530))
    parser.add_argument("--mlflow-port", type=int, default=_env_int("PICKWISE_MLFLOW_PORT", 5000),
                        help="the MLflow tracking server (model registry and its UI)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="infrastructure + catalog + the six services and the monitor (foreground)")
    for spec in SERVICES:
        env = f"PICKWISE_{spec.name.upper().replace('-', '_')}_PORT"
        run.add_argument(f"--{spec.name}-port", type=int, default=_env_int(env, spec.default_port),
                         dest=f"port_{spec.name.replace('-', '_')}")
    run.add_argument("--no-catalog", action="store_true", help="skip the catalog ingest step")
    run.add_argument("--no-history", action="store_true",
                     help="skip loading the retail purchase history and training its CF model in the background")
    sub.add_parser("infra", help="only the embedded broker, Redis, Postgres, Milvus Lite and MLflow (foreground)")
    keys = sub.add_parser("keys", help="API key records for PICKWISE_API_KEYS").add_subparsers(
        dest="keys_command", required=True)
    hashed = keys.add_parser("hash", help="print the JSON record of a key (its sha256, never the key)")
    hashed.add_argument("key")
    hashed.add_argument("--id", default="web", help="the id logs and metrics show for this key")
    hashed.add_argument("--scopes", default="read,events", help="comma-separated: read, events, admin")
    hashed.add_argument("--catalogs", default="*", help="comma-separated catalog names; * = all")
    return parser


def _key_record(args: argparse.Namespace) -> str:
    key = ApiKey(id=args.id, sha256=digest(args.key), scopes=tuple(s for s in args.scopes.split(",") if s),
                 catalogs=tuple(c for c in args.catalogs.split(",") if c))
    return json.dumps(key.record())


def _wait_for_signal() -> None:
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    stop.wait()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pickwise %(message)s", datefmt="%H:%M:%S")
    args = _parser().parse_args(argv)
    if args.command == "keys":
        print(_key_record(args))
        return 0
    infra_cfg = InfraConfig(args.data_dir, broker_port=args.broker_port, redis_port=args.redis_port,
                            postgres_port=args.postgres_port, milvus_port=args.milvus_port,
                            mlflow_port=args.mlflow_port)
    # SIGTERM during start-up must still stop what was started
    signal.signal(signal.SIGTERM, _interrupt)
    if args.command == "run":
        # `make run`: the request path's CPU-bound services use the machine's cores (decision 0910)
        for spec in SERVICES:
            if spec.auto_workers:
                os.environ.setdefault(spec.workers_env, "auto")
    try:
        if args.command == "infra":
            infra = start_infra(infra_cfg)
            print("Pickwise infrastructure is up:")
            for key, value in infra_cfg.env().items():
                print(f"  {key}={value}")
            try:
                _wait_for_signal()
            finally:
                infra.stop()
            return 0
        ports = {spec.name: getattr(args, f"port_{spec.name.replace('-', '_')}") for spec in SERVICES}
        config = StackConfig(data_dir=args.data_dir, infra=infra_cfg, service_ports=ports,
                             load_catalog=not args.no_catalog)
        stack = start_stack(config)
    except StartupError as exc:
        print(f"pickwise: start-up failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        _print_urls(config)
        if not args.no_catalog and not args.no_history:
            bootstrap_history(config, stack.env())
            print("Loading the retail purchase history and training its CF model in the background "
                  f"(log: {config.data_dir / 'logs' / 'history.log'}); the retail feed is content-based until then.\n",
                  flush=True)
        _wait_for_signal()
    finally:
        stack.stop()
        print("Pickwise stopped.")
    return 0


def _print_urls(config: StackConfig) -> None:
    configured = os.environ.get("PICKWISE_API_KEYS", DEFAULT_API_KEY)
    # JSON records hold digests only: there is no key to show
    key = "(from PICKWISE_API_KEYS)" if configured.lstrip().startswith("[") else configured.split(",")[0]
    infra = config.infra_config()
    print("\nPickwise is running.\n")
    print(f"  Web page      {config.url('gateway')}/")
    print(f"  API docs      {config.url('gateway')}/docs")
    print(f"  API key       {key}   (header X-API-Key; set PICKWISE_API_KEYS to change)")
    env = config.service_env()
    for spec in SERVICES:
        workers = spec.workers(env)
        extra = f", {workers} worker processes" if workers > 1 else ""
        print(f"  {spec.name:<14}{config.url(spec.name)}   (/readyz, /metrics{extra})" if len(spec.name) < 14
              else f"  {spec.name} {config.url(spec.name)}   (/readyz, /metrics{extra})")
    print(f"  Kafka         {infra.kafka_bootstrap}")
    print(f"  Redis         {infra.redis_url}")
    print(f"  Postgres      {infra.postgres_url}")
    print(f"  Milvus        {infra.milvus_uri}")
    print(f"  MLflow        {infra.mlflow_uri}   (model registry and its UI; `make mlflow-ui` opens it)")
    print(f"  Logs          {config.data_dir / 'logs'}/")
    print("\nCtrl-C stops everything.\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
