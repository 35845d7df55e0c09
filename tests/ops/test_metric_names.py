"""Every Prometheus metric the services and pickwise-common register follows one naming convention:
``pickwise_`` prefix, snake case, ``_total`` on counters only, a base unit at the end of histograms, and
no two metrics with one name. Modules are imported, not run (nothing heavy happens at import)."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from prometheus_client import REGISTRY

pytestmark = pytest.mark.unit

PACKAGES = ["pickwise_common", "pickwise_gateway", "pickwise_retriever", "pickwise_reranker", "pickwise_generator",
            "pickwise_session", "pickwise_event_consumer"]
SKIP = ("pickwise_common.launcher", "pickwise_common.testing")
UNITS = ("_seconds", "_bytes", "_messages", "_ratio", "_items", "_tokens")
NAME = re.compile(r"^pickwise_[a-z][a-z0-9_]*[a-z0-9]$")


@pytest.fixture(scope="module")
def families() -> dict[str, str]:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if not info.name.startswith(SKIP):
                importlib.import_module(info.name)
    found = {}
    for metric in REGISTRY.collect():
        if metric.name.startswith("pickwise_"):
            found[metric.name] = metric.type
    return found


def test_the_services_register_their_metrics_on_import(families) -> None:
    # one from each service's own module, so the import walk really reached them
    assert {"pickwise_http_requests", "pickwise_consumer_lag_messages", "pickwise_llm_requests",
            "pickwise_gateway_recommendations", "pickwise_postgres_pool_connections"} <= set(families)


def test_metric_names_follow_the_prometheus_conventions(families) -> None:
    problems = []
    for name, kind in sorted(families.items()):
        exposed = name + "_total" if kind == "counter" else name
        if not NAME.match(exposed):
            problems.append(f"{exposed}: not pickwise_ snake case")
        if kind != "counter" and exposed.endswith("_total"):
            problems.append(f"{exposed}: _total on a {kind}")
        if kind == "histogram" and not exposed.endswith(UNITS):
            problems.append(f"{exposed}: a histogram without a unit suffix {UNITS}")
        if "_ms" in exposed or "milliseconds" in exposed:
            problems.append(f"{exposed}: use base units (seconds)")
    assert problems == []


def test_every_metric_is_documented_in_the_operations_guide(families, repo) -> None:
    documented = set(re.findall(r"`(pickwise_[a-z0-9_]+)`", (repo / "docs/operations.md").read_text()))
    # the table writes each pool pair as `pickwise_<store>_pool_connections` / `_max_connections`
    documented |= {name.replace("_connections", "_max_connections") for name in documented}
    exposed = {name + "_total" if kind == "counter" else name for name, kind in families.items()}
    assert sorted(exposed - documented) == []
