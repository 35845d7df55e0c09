"""The ``pickwise-pipeline`` command line: one sub-command per module.

Registry pattern: every module listed in ``COMMAND_MODULES`` exposes ``register(subparsers)``, which adds
its sub-parser(s) and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an
exit code). To add a command, write a module with ``register`` and add one line to the list below.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# One line per command module (package-relative names).
COMMAND_MODULES: list[str] = [
    "ingest",
    "evaluate",
    "generate_catalog",
    "bench_bm25",
    "bench_retriever",
    "bench_vectors",
    "bench_encoder",
    "bench_retrieve_cpu",
    "bench",
    "train_ranker",
    "bench_click",
    "bench_cf_feed",
    "report",
    "replay_dlq",
    "noisy_queries",
    "shopper_queries",
    "interactions",
    "train_cf",
    "evaluate_cf",
    "experiments",
    "simulate",
    "drift",
    "rollout",
    "monitor",
    "model_registry",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pickwise-pipeline", description="Pickwise offline pipeline")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pickwise_pipeline.{name}")
        except ImportError as exc:
            # one broken command module must not take the others (e.g. the launcher's ingest) down
            _register_broken(subparsers, name, exc)
            continue
        module.register(subparsers)
    return parser


def _register_broken(subparsers: argparse._SubParsersAction, name: str, exc: ImportError) -> None:
    def fail(_args: argparse.Namespace) -> int:
        print(f"command module pickwise_pipeline.{name} cannot be imported: {exc}", file=sys.stderr)
        return 1

    parser = subparsers.add_parser(name.replace("_", "-"), help=f"(unavailable: {exc})")
    parser.set_defaults(func=fail)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
