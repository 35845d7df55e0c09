"""The evaluation harness against the running services of the test stack, over HTTP."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

QUERIES = [
    {"qid": "t1", "query": "Nokia 2.4", "judgments": {"fm-00942": 2, "fm-00968": 2, "fm-00969": 2}},
    {"qid": "t2", "query": "Gionee S96", "judgments": {"fm-00801": 2, "fm-00805": 2, "fm-00815": 2}},
]


def evaluate(stack, api_key: str, tmp_path, *args: str) -> list[str]:
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(q) for q in QUERIES) + "\n", encoding="utf-8")
    env = dict(os.environ) | {"PICKWISE_RETRIEVER_URL": stack.url("retriever"),
                              "PICKWISE_GATEWAY_URL": stack.url("gateway"), "PICKWISE_API_KEYS": api_key}
    result = subprocess.run([sys.executable, "-m", "pickwise_pipeline", "evaluate", "--queries", str(path), *args],
                            env=env, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()


def test_per_mode_figures_and_a_json_last_line(stack, api_key, tmp_path) -> None:
    lines = evaluate(stack, api_key, tmp_path, "--modes", "bm25,hybrid")
    last = json.loads(lines[-1])
    assert last["queries"] == 2
    assert set(last) == {"queries", "bm25", "hybrid"}
    assert set(last["hybrid"]) == {"ndcg@10", "recall@50", "mrr@10", "constraint_precision@10"}
    assert last["hybrid"]["mrr@10"] == 1.0


def test_one_mode_prints_flat_figures(stack, api_key, tmp_path) -> None:
    last = json.loads(evaluate(stack, api_key, tmp_path, "--modes", "dense")[-1])
    assert set(last) == {"queries", "ndcg@10", "recall@50", "mrr@10", "constraint_precision@10"}


def test_gateway_target(stack, api_key, tmp_path) -> None:
    last = json.loads(evaluate(stack, api_key, tmp_path, "--target", "gateway")[-1])
    assert last["queries"] == 2
    assert 0.0 < last["ndcg@10"] <= 1.0
