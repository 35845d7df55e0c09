"""Grafana provisioning: the datasources the dashboards use exist, and the five dashboards are well formed."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = pytest.mark.unit

DASHBOARDS = "observability/grafana/dashboards"
EXPECTED = {"overview.json", "request-path.json", "event-pipeline.json", "llm.json", "learning-loop.json"}


def _dashboards(repo) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((repo / DASHBOARDS).glob("*.json"))}


def _panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def test_the_five_dashboards_exist_with_unique_uids(repo) -> None:
    dashboards = _dashboards(repo)
    assert set(dashboards) == EXPECTED
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)
    assert all(uid.startswith("pickwise-") for uid in uids)


def test_every_panel_queries_a_provisioned_datasource(repo) -> None:
    datasources = yaml.safe_load((repo / "observability/grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {d["uid"]: d["type"] for d in datasources["datasources"]}
    assert set(uids.values()) == {"prometheus", "jaeger"}
    for name, dashboard in _dashboards(repo).items():
        queries = [p for p in _panels(dashboard) if p["type"] != "row"]
        assert queries, name
        for panel in queries:
            assert uids[panel["datasource"]["uid"]] == panel["datasource"]["type"], (name, panel["title"])
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), (name, panel["title"])
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_panels_do_not_overlap(repo) -> None:
    for name, dashboard in _dashboards(repo).items():
        cells: set[tuple[int, int]] = set()
        for panel in _panels(dashboard):
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24, (name, panel["title"])
            area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & area, (name, panel["title"])
            cells |= area


def test_provisioning_loads_the_dashboard_folder_compose_mounts(repo) -> None:
    provider = yaml.safe_load((repo / "observability/grafana/provisioning/dashboards/dashboards.yml").read_text())
    compose = (repo / "deploy/compose/docker-compose.yml").read_text()
    path = provider["providers"][0]["options"]["path"]
    assert f"../../observability/grafana/dashboards:{path}:ro" in compose
