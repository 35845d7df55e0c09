"""The simulator against the test session's real stack: its clicks reach the event log with the request ids of the
searches they came from, the gateway's impressions of those searches are stored, and ``train-ranker
--from-events`` learns a model from them (propensities from a gateway that explores every search)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pickwise_common.launcher.stack import DEFAULT_API_KEY
from pickwise_common.settings import REPO_ROOT, default_data_root
from pickwise_pipeline import simulate, train_ranker

pytestmark = pytest.mark.integration


def fetch(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(url)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


def wait_for_rows(url: str, sql: str, args: tuple[Any, ...], expected: int, limit_s: float = 120.0) -> int:
    """Polls until ``expected`` rows are there (the consumer stores them asynchronously); returns the count seen."""
    deadline = time.monotonic() + limit_s
    count = 0
    while time.monotonic() < deadline:
        count = len(fetch(url, sql, *args))
        if count >= expected:
            break
        time.sleep(0.5)
    return count


def truth_rows(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "truth.jsonl").read_text().splitlines()]


def run_simulation(gateway_url: str, out: Path, sessions: int, seed: int) -> dict[str, Any]:
    return simulate.simulate(gateway_url=gateway_url, sessions=sessions, rate_per_s=40.0, seed=seed, out_dir=out,
                             api_key=DEFAULT_API_KEY, catalog_csv=default_data_root() / "flipkart_mobiles.csv",
                             concurrency=2)


def test_simulated_clicks_and_impressions_reach_the_event_log_with_request_ids(stack, infra, tmp_path):
    out = tmp_path / "sim"
    summary = run_simulation(stack.url("gateway"), out, sessions=6, seed=101)

    rows = truth_rows(out)
    assert summary["sessions"] == 6 and summary["errors"] == 0 and summary["searches"] >= 6
    assert json.loads((out / "summary.json").read_text())["searches"] == summary["searches"]
    assert set(summary["by_variant"]) and set(summary["by_ranker"])
    request_ids = [q["request_id"] for r in rows for q in r["queries"]]
    actions = [(q["request_id"], a["item_id"], a["type"], a["position"]) for r in rows for q in r["queries"]
               for a in q["actions"]]
    assert all(r["user_id"].startswith("sim-101-") for r in rows)
    # the queries parse: a brand understood is one the shopper wants; a price phrase becomes a price cap
    pages = [(r["preferences"], q) for r in rows for q in r["queries"]]
    assert all(set(q["parsed"].get("brands", [])) <= set(p["brands"]) for p, q in pages)
    priced = [q for _, q in pages if any(w in q["query"] for w in ("under", "below", "within", "less than", "upto"))]
    assert all(q["parsed"].get("price_max_inr") for q in priced)
    pg = infra.config.postgres_url
    events_sql = "SELECT request_id, item_id, type, position FROM events WHERE user_id LIKE 'sim-101-%'"
    assert wait_for_rows(pg, events_sql, (), len(actions)) == len(actions)
    stored = {(e["request_id"], e["item_id"], e["type"], e["position"]) for e in fetch(pg, events_sql)}
    assert stored == set(actions)
    impressions_sql = "SELECT request_id, items FROM impressions WHERE request_id = ANY($1::text[])"
    assert wait_for_rows(pg, impressions_sql, (request_ids,), len(request_ids)) == len(request_ids)
    shown = {r["request_id"]: [i["item_id"] for i in sorted(json.loads(r["items"]), key=lambda i: i["position"])]
             for r in fetch(pg, impressions_sql, request_ids)}
    assert all(shown[q["request_id"]] == q["shown"] for r in rows for q in r["queries"])


def test_train_ranker_from_simulated_events_writes_a_click_trained_model(stack, infra, tmp_path):
    since = datetime.now(UTC)
    proc, gateway = stack.start_extra("gateway", {"PICKWISE_EXPLORATION_SHARE": "1.0"})
    try:
        out = tmp_path / "sim"
        summary = run_simulation(gateway, out, sessions=40, seed=202)
    finally:
        proc.stop()
    request_ids = [q["request_id"] for r in truth_rows(out) for q in r["queries"]]
    pg = infra.config.postgres_url
    clicks = summary["clicks"] + summary["add_to_carts"] + summary["purchases"]
    assert wait_for_rows(pg, "SELECT 1 FROM impressions WHERE request_id = ANY($1::text[])", (request_ids,),
                         len(request_ids)) == len(request_ids)
    assert wait_for_rows(pg, "SELECT 1 FROM events WHERE user_id LIKE 'sim-202-%'", (), clicks) == clicks
    models = tmp_path / "models"
    judgment = sorted((REPO_ROOT / "models" / "ranker").glob("ranker-v*.txt"))[-1]
    args = argparse.Namespace(
        from_events=True, since=since.isoformat(), catalog="flipkart", truth=str(out / "truth.jsonl"),
        catalog_csv=str(default_data_root() / "flipkart_mobiles.csv"), postgres_url=pg, heldout_fraction=0.25,
        propensity_clip=0.05, judgment_model=str(judgment), retriever_url=stack.url("retriever"), mode="hybrid",
        k=50, seed=13, rounds=20, timeout_s=30.0, out_dir=str(models), registry_uri="none", min_gain=0.0)

    assert train_ranker.run(args) == 0

    [model] = list(models.rglob("ranker-v*.txt"))
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["trained_from"] == "events"
    assert meta["events"]["impressions"] == len(request_ids)
    assert meta["events"]["train_impressions"] + meta["events"]["heldout_impressions"] == len(request_ids)
    props = meta["propensities"]["values"]
    assert props[0] == 1.0 and len(props) == 10 and all(a >= b for a, b in zip(props, props[1:], strict=False))
    # every search explored, except pages too short to have a pair (fewer than two items)
    assert 0.8 * len(request_ids) <= meta["propensities"]["explored_impressions"] <= len(request_ids)
    offline = meta["offline"]
    assert set(offline["ipw_click_ndcg@10"]) == {"click_ranker", "judgment_ranker", "retrieval_order",
                                                 "logged_order"}
    assert all(0.0 <= v <= 1.0 for v in offline["ipw_click_ndcg@10"].values())
    assert set(offline["true_ndcg@10"]) == set(offline["expected_clicks@10"]) == {"click_ranker", "judgment_ranker",
                                                                                  "retrieval_order"}
    assert 0 < offline["true_queries"] <= offline["heldout_impressions"]
