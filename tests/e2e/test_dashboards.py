"""Every metric a Grafana panel or an alert rule queries is one the running services really export.

The test drives a little traffic through the shared stack (a recommendation with a session, a search, a
click that the event-consumer applies), waits for the monitor to export experiment statistics over the
stored impressions, scrapes the six services' and the monitor's /metrics and checks each query:
- every metric name is exported under that exact series name (a histogram only as _bucket/_sum/_count,
  a counter as _total), by some service;
- the series has samples after the traffic, unless it is listed in ONLY_ON_FAILURE (metrics that a
  healthy stack legitimately never observes) — then at least its family must be registered (HELP/TYPE);
- label matchers and `by (...)` clauses name labels the series carry, and exact-match values (a route, a
  service) occur in the samples.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "retriever", "reranker", "generator", "session", "event-consumer", "monitor")
# labels Prometheus adds at scrape time (observability/prometheus/*.yml: job, instance, the target's service)
TARGET_LABELS = {"job", "instance", "service"}
# Series a healthy stack without an LLM key never observes; their families must still be registered.
ONLY_ON_FAILURE = {
    "pickwise_downstream_retries_total": "a downstream call failed and was retried",
    "pickwise_events_retried_total": "an event failed to apply and went to a retry topic",
    "pickwise_events_dead_lettered_total": "an event went to events.dlq",
    "pickwise_llm_tokens_total": "an LLM provider answered (no LLM key in tests: the template answers)",
    "pickwise_llm_request_duration_seconds_bucket": "an LLM provider was called (tests/e2e/test_tracing.py does)",
    "pickwise_llm_dropped_citations_total": "an LLM cited an item it was not given",
    "pickwise_gateway_feed_degraded_total": "a personal feed was served without one of its sources",
    # the learning loop (monitor): no challenger is registered in the test stack, and its drift windows hold
    # fewer impressions than PICKWISE_DRIFT_MIN_ROWS (no value then, rather than a false alarm)
    "pickwise_rollout_actions_total": "the rollout controller rolled a challenger back or promoted it",
    "pickwise_rollout_challenger_info": "a challenger version is registered",
    "pickwise_rollout_guard": "a challenger version is registered",
    "pickwise_drift_psi": "both drift windows hold PICKWISE_DRIFT_MIN_ROWS impressions",
    "pickwise_drift_ks_statistic": "both drift windows hold PICKWISE_DRIFT_MIN_ROWS impressions",
    "pickwise_drift_ks_pvalue": "both drift windows hold PICKWISE_DRIFT_MIN_ROWS impressions",
}
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("", "_sum", "_count"), "info": ("_info",), "unknown": ("",)}
METRIC = re.compile(r"\b(pickwise_[a-z0-9_]+)\b")
RECORDED = re.compile(r"\b([a-z_]+:[a-z0-9_:]+)\b")
SELECTOR = re.compile(r"\b(pickwise_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
BY = re.compile(r"\bby\s*\(([^)]*)\)")


class Exposition:
    """What the six services export: series names by family type, label names and values per series."""

    def __init__(self) -> None:
        self.registered: set[str] = set()  # every valid series name of every registered family
        self.observed: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            for suffix in SUFFIXES.get(family.type, ("",)):
                self.registered.add(family.name + suffix)
            for sample in family.samples:
                labels = self.observed[sample.name]
                for key, value in sample.labels.items():
                    labels[key].add(value)


def _queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard target and every alerting/recording rule."""
    queries = []
    for path in sorted((REPO / "observability/grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{path.name}: {panel['title']}", target["expr"]))
        for variable in dashboard.get("templating", {}).get("list", []):
            queries.append((f"{path.name}: variable {variable['name']}", variable["definition"]))
    rules = yaml.safe_load((REPO / "observability/alerts/pickwise.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            queries.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return queries


def _recording_rules() -> set[str]:
    rules = yaml.safe_load((REPO / "observability/alerts/pickwise.rules.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


def _drive_traffic(stack, api_key: str) -> None:
    headers = {"X-API-Key": api_key}
    user = f"dash-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=stack.url("gateway"), headers=headers, timeout=30) as client:
        query = {"query": "samsung phone under 20000 with 8gb ram", "k": 5, "user_id": user}
        rec = client.post("/v1/recommendations", json=query)
        assert rec.status_code == 200, rec.text
        # the same query again: the gateway's retrieval cache answers (a hit for the cache panel); no session
        # here, since a stored turn would add the previous constraints to the retrieval (another cache key)
        assert client.post("/v1/recommendations", json=query).status_code == 200
        with_session = {**query, "session_id": f"{user}-s"}
        assert client.post("/v1/recommendations", json=with_session).status_code == 200
        assert client.get("/v1/search", params={"q": "apple iphone"}).status_code == 200
        item = rec.json()["items"][0]["item_id"]
        click = client.post("/v1/events/click", json={"user_id": user, "item_id": item, "source": "search",
                                                        "position": 1})
        assert click.status_code == 202, click.text
    # the click is applied asynchronously: wait until the consumer has observed an apply delay
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = httpx.get(stack.url("event-consumer") + "/metrics", timeout=5).text
        if re.search(r"^pickwise_event_apply_delay_seconds_count [1-9]", text, re.M):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the event-consumer did not apply the click within 60 s")
    # the impressions are stored asynchronously too, and the monitor's experiment job runs on an interval
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = httpx.get(stack.url("monitor") + "/metrics", timeout=5).text
        if re.search(r"^pickwise_experiment_rate\{", text, re.M):
            return
        time.sleep(1)
    raise AssertionError("the monitor exported no experiment statistics within 180 s of the traffic")


@pytest.fixture(scope="module")
def exposition(stack, api_key) -> Exposition:
    _drive_traffic(stack, api_key)
    scraped = Exposition()
    for service in SERVICES:
        response = httpx.get(stack.url(service) + "/metrics", timeout=10)
        assert response.status_code == 200
        scraped.add(response.text)
    return scraped


def _names(expr: str) -> set[str]:
    return set(METRIC.findall(RECORDED.sub(" ", expr)))


def test_every_queried_metric_is_exported_under_that_series_name(exposition) -> None:
    recorded = _recording_rules()
    problems = []
    for where, expr in _queries():
        problems += [f"{where}: recording rule {r} is not defined" for r in RECORDED.findall(expr)
                     if r not in recorded]
        problems += [f"{where}: {name} is not exported by any service" for name in _names(expr)
                     if name not in exposition.registered]
    assert problems == []


def test_every_queried_metric_has_samples_after_traffic_unless_it_only_moves_on_failure(exposition) -> None:
    unobserved = sorted({name for _, expr in _queries() for name in _names(expr)
                         if name not in exposition.observed and name not in ONLY_ON_FAILURE})
    assert unobserved == []


def test_label_matchers_and_groupings_use_labels_the_series_carry(exposition) -> None:
    problems = []
    for where, expr in _queries():
        cleaned = RECORDED.sub(" ", expr)
        for name, body in SELECTOR.findall(cleaned):
            labels = exposition.observed.get(name)
            if labels is None:
                continue  # never observed (ONLY_ON_FAILURE): nothing to compare with
            for label, op, value in MATCHER.findall(body):
                if label not in labels and label not in TARGET_LABELS:
                    problems.append(f"{where}: {name} has no label {label!r}")
                elif op == "=" and label in labels and value not in labels[label] and "$" not in value:
                    problems.append(f"{where}: {name}{{{label}={value!r}}} matches nothing; seen "
                                    f"{sorted(labels[label])}")
        available = set(TARGET_LABELS) | {"le"}
        for name in _names(cleaned):
            available |= set(exposition.observed.get(name, {}))
        observed_all = all(n in exposition.observed for n in _names(cleaned))
        for group in BY.findall(cleaned):
            for label in (part.strip() for part in group.split(",")):
                if observed_all and label and label not in available:
                    problems.append(f"{where}: groups by {label!r}, which none of its series carry")
    assert problems == []


def test_the_check_catches_a_misnamed_metric(exposition) -> None:
    """The histogram's bare name and a typo are not series names, so a panel using them would fail."""
    assert "pickwise_http_request_duration_seconds" not in exposition.registered
    assert "pickwise_http_request_duration_seconds_bucket" in exposition.registered
    assert "pickwise_http_request_total" not in exposition.registered
