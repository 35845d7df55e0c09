"""Prometheus config and alert rules: promtool checks them, and the rule unit tests prove each alert fires."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

pytestmark = pytest.mark.unit

CONFIGS = ["observability/prometheus/prometheus.yml", "observability/prometheus/prometheus.local.yml"]
RULES = "observability/alerts/pickwise.rules.yml"
RULE_TESTS = "observability/alerts/tests/pickwise.rules.test.yml"
SERVICES = {"gateway", "retriever", "reranker", "generator", "session", "event-consumer", "monitor"}
# what the issue asks an alert for, by the alert that covers it
REQUIRED_ALERTS = {"PickwiseHighLatency", "PickwiseHighErrorRate", "PickwiseRerankerSlow", "PickwiseLLMFailureRate",
                   "PickwiseConsumerLagGrowing", "PickwiseDeadLetters", "PickwiseServiceDown"}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: scripts/install.sh installs the Debian package prometheus"
    return path


def _alerts(repo) -> dict[str, dict]:
    doc = yaml.safe_load((repo / RULES).read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


@pytest.mark.parametrize("config", CONFIGS)
def test_promtool_accepts_the_prometheus_config(repo, run_tool, promtool, config) -> None:
    result = run_tool([promtool, "check", "config", config])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


@pytest.mark.parametrize("config", CONFIGS)
def test_prometheus_scrapes_all_six_services_and_the_monitor(repo, config) -> None:
    doc = yaml.safe_load((repo / config).read_text())
    job = next(j for j in doc["scrape_configs"] if j["job_name"] == "pickwise")
    scraped = {sc["labels"]["service"] for sc in job["static_configs"]}
    ports = {sc["targets"][0].rsplit(":", 1)[1] for sc in job["static_configs"]}
    assert scraped == SERVICES
    assert ports == {"8000", "8001", "8002", "8003", "8004", "8005", "8006"}


def test_promtool_accepts_the_rules(repo, run_tool, promtool) -> None:
    result = run_tool([promtool, "check", "rules", RULES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass(repo, run_tool, promtool) -> None:
    result = run_tool([promtool, "test", "rules", RULE_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rule_unit_tests_fail_when_an_alert_is_broken(repo, run_tool, promtool, tmp_path) -> None:
    """The unit tests are not vacuous: raising the latency threshold to 3 s makes them fail."""
    rule = "service_route:pickwise_http_request_duration_seconds:p95_5m"
    broken = (repo / RULES).read_text().replace(f"{rule} > 2", f"{rule} > 3")
    (tmp_path / "pickwise.rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "pickwise.rules.test.yml").write_text((repo / RULE_TESTS).read_text())
    result = run_tool([promtool, "test", "rules", str(tmp_path / "tests" / "pickwise.rules.test.yml")])
    assert result.returncode != 0
    assert "PickwiseHighLatency" in result.stdout + result.stderr


def test_every_required_alert_exists_and_has_a_firing_unit_test(repo) -> None:
    alerts = _alerts(repo)
    tests = yaml.safe_load((repo / RULE_TESTS).read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert REQUIRED_ALERTS <= set(alerts)
    assert set(alerts) <= fired


def test_every_alert_has_a_runbook_entry(repo) -> None:
    operations = (repo / "docs/operations.md").read_text()
    headings = {m.group(1) for m in re.finditer(r"^#{2,4} +(Pickwise\w+)\s*$", operations, re.M)}
    for name, rule in _alerts(repo).items():
        assert name in headings, f"docs/operations.md has no runbook heading for {name}"
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert rule["labels"]["severity"] in {"page", "ticket"}
