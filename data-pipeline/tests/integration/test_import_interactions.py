"""import-interactions and train-cf against the session's real Postgres and Redis (own database and Redis db):
a second import adds nothing, Redis history is rebuilt from the log, and train-cf writes a loadable model."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
import redis

from pickwise_common import cf
from pickwise_common.redis import popularity_all_key, user_history_key
from pickwise_common.settings import default_data_root
from pickwise_pipeline.interactions import build_events, read_lines

pytestmark = pytest.mark.integration

SLICE_LINES = 6000


@pytest.fixture(scope="module")
def env(infra, fresh_database, tmp_path_factory) -> dict[str, str]:
    _, url = fresh_database("cf")
    folder = tmp_path_factory.mktemp("retail")
    source = folder / "slice.csv"
    with gzip.open(default_data_root() / "retail" / "online_retail.csv.gz", "rt", encoding="utf-8") as fh, \
            source.open("w", encoding="utf-8") as out:
        for n, text in enumerate(fh):
            if n > SLICE_LINES:
                break
            out.write(text)
        out.write("536999,85123A,BROKEN LINE,not-a-number,2010-12-02 10:00:00,2.55,17850.0,United Kingdom\n")
        out.write("536999,85123A\n")
    environment = dict(os.environ) | infra.config.env() | {
        "PICKWISE_POSTGRES_URL": url,
        "PICKWISE_REDIS_URL": infra.config.redis_url.rsplit("/", 1)[0] + "/9",
        "PICKWISE_MODELS_DIR": str(folder / "models"), "CF_SOURCE": str(source), "CI": "1"}
    redis.Redis.from_url(environment["PICKWISE_REDIS_URL"]).flushdb()
    return environment


def pipeline(env: dict[str, str], *args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "pickwise_pipeline", *args], env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def count_events(env: dict[str, str]) -> int:
    return query(env, "SELECT count(*) FROM events WHERE catalog = 'retail' AND type = 'purchase'")[0][0]


def query(env: dict[str, str], sql: str) -> list:
    async def go() -> list:
        conn = await asyncpg.connect(env["PICKWISE_POSTGRES_URL"])
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_second_import_adds_nothing_and_train_cf_writes_a_loadable_model(env):
    first = pipeline(env, "import-interactions", "--catalog", "retail", "--source", env["CF_SOURCE"])
    assert first["lines"] == SLICE_LINES + 2
    assert first["malformed"] == 2
    assert first["inserted"] == first["events"] > 1000
    assert count_events(env) == first["events"]
    table, _ = build_events(read_lines(Path(env["CF_SOURCE"])))
    expected = {e.event_id: (e.user_id, e.item_id, e.quantity) for e in table.events()}
    stored = {str(r["event_id"]): (r["user_id"], r["item_id"], r["quantity"])
              for r in query(env, "SELECT event_id, user_id, item_id, quantity FROM events WHERE catalog = 'retail'")}
    assert stored == expected

    second = pipeline(env, "import-interactions", "--catalog", "retail", "--source", env["CF_SOURCE"])
    assert second["inserted"] == 0 and second["already_present"] == first["events"]
    assert count_events(env) == first["events"]

    client = redis.Redis.from_url(env["PICKWISE_REDIS_URL"], decode_responses=True)
    history = client.hgetall(user_history_key("17850", "retail"))
    assert history and all(item.startswith("or-") and float(w) > 0 for item, w in history.items())
    assert client.zcard(popularity_all_key("retail")) == first["redis"]["popular_items"] > 100

    trained = pipeline(env, "train-cf", "--catalog", "retail", "--factors", "16", "--iterations", "5")
    directory = cf.latest_version_dir(Path(env["PICKWISE_MODELS_DIR"]), "retail")
    assert directory is not None and directory.name == trained["version"]
    model = cf.load(directory)
    assert model.catalog == "retail" and model.factors == 16
    assert model.metrics["users"] == trained["metrics"]["users"] > 10
    feed = model.recommend({i: float(w) for i, w in history.items()}, k=20)
    assert len(feed) == 20
