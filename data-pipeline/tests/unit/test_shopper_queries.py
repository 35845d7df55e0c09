"""The bench's query stream: enough distinct queries, the same for a seed, each one the gateway accepts."""

import json
from pathlib import Path

import pytest

from pickwise_pipeline.bench import distinct_queries, load_queries
from pickwise_pipeline.shopper_queries import MAX_QUERY_CHARS, run, shopper_queries, vocabulary

pytestmark = pytest.mark.unit

CATALOG = Path(__file__).resolve().parents[3] / "data" / "flipkart_mobiles.csv"


def test_five_thousand_queries_are_all_distinct() -> None:
    queries = shopper_queries(5000, seed=7, catalog_csv=CATALOG)
    assert len(queries) == 5000
    assert len(set(queries)) == 5000


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    first = shopper_queries(500, seed=7, catalog_csv=CATALOG)
    assert shopper_queries(500, seed=7, catalog_csv=CATALOG) == first
    assert shopper_queries(500, seed=8, catalog_csv=CATALOG) != first


def test_every_query_is_a_valid_gateway_q() -> None:
    for query in shopper_queries(5000, seed=3, catalog_csv=CATALOG):
        assert 1 <= len(query) <= MAX_QUERY_CHARS
        assert query == query.strip() and "  " not in query
        assert query.isprintable()


def test_queries_use_the_catalog_vocabulary() -> None:
    vocab = vocabulary(CATALOG)
    queries = shopper_queries(2000, seed=7, catalog_csv=CATALOG)
    assert "samsung" in vocab.brands and 8 in vocab.ram_gb and 128 in vocab.storage_gb
    with_brand = sum(any(b in q.lower() for b in vocab.brands) for q in queries)
    with_price = sum(any(w in q.lower() for w in ("under", "below", "between", "above", "upto", "within"))
                     for q in queries)
    assert with_brand > len(queries) / 2
    assert with_price > len(queries) / 10


def test_written_file_round_trips_through_the_bench_loader(tmp_path: Path) -> None:
    out = tmp_path / "queries.jsonl"
    args = type("Args", (), {"count": 300, "seed": 7, "catalog": str(CATALOG), "out": str(out)})()
    assert run(args) == 0
    assert load_queries(out) == shopper_queries(300, seed=7, catalog_csv=CATALOG)
    assert all(json.loads(line)["query"] for line in out.read_text(encoding="utf-8").splitlines())


def test_plain_text_file_and_too_few_distinct_queries(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("iphone 128gb\nredmi under 10k\niphone 128gb\n", encoding="utf-8")
    assert distinct_queries(path, 2) == ["iphone 128gb", "redmi under 10k"]
    with pytest.raises(SystemExit, match="2 distinct queries"):
        distinct_queries(path, 3)
