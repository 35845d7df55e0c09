"""Collaborative filtering through the real stack (decision 0813): a tiny CF model of the retail catalog
registered as ``pickwise-cf-retail@champion`` in the stack's MLflow is picked up without a restart (decision
1003b); a new user gets cold-start popularity; a
purchase posted through `POST /v1/events` reaches the user's history hash through the broker and the consumer
and the next feed folds it in (no retraining); a dismiss hides the item; similar and bought-together answer
from the model; bad k and unknown catalogs are refused. (The purchase-to-feed delay is measured by
`pickwise-pipeline bench-cf-feed`, not asserted here.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from pickwise_common import cf
from pickwise_common.registry import Registry, RegistrySettings

pytestmark = pytest.mark.e2e
GROUP = 6  # items per taste


@pytest.fixture(scope="module")
def gateway(stack, api_key) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("gateway"), headers={"X-API-Key": api_key}, timeout=15) as client:
        yield client


def eventually(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll until ``check`` returns something truthy; the bound turns a hang into a failure naming it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def tiny_model(ids: list[str]) -> cf.CfModel:
    """Two tastes: the first GROUP ids go together, the next GROUP too; the second taste is the more popular."""
    first, second = ids[:GROUP], ids[GROUP:2 * GROUP]
    factors = np.array([[1.0, 0.05 * n] for n in range(GROUP)] + [[0.05 * n, 1.0] for n in range(GROUP)],
                       dtype=np.float32)
    similar = {a: [(b, 0.9 - 0.01 * j) for j, b in enumerate(x for x in group if x != a)]
               for group in (first, second) for a in group}
    return cf.CfModel(
        version=cf.new_version(datetime.now(UTC)), catalog="retail", trained_at=datetime.now(UTC).isoformat(),
        window={"from": "2010-12-01", "until": "2011-10-31"}, item_ids=first + second, item_factors=factors,
        regularization=0.1, alpha=1.0, similar=similar,
        bought_together={first[0]: [(first[1], 5.0, 0.6, 40), (second[0], 1.5, 0.1, 12)]},
        popularity=[(item, float(100 - n)) for n, item in enumerate(second + first)])


@pytest.fixture(scope="module")
def retail_model(stack, gateway) -> cf.CfModel:
    """A tiny model over items the retail catalog serves, saved where the stack's retriever polls, and the
    retriever's readiness reporting its version (picked up without a restart or a reload call)."""
    response = gateway.get("/v1/popular", params={"catalog": "retail", "k": 2 * GROUP})
    assert response.status_code == 200, response.text
    ids = [c["item"]["item_id"] for c in response.json()["candidates"]]
    assert len(ids) == 2 * GROUP, ids
    model = tiny_model(ids)
    saved = cf.save(model, Path(stack.env()["PICKWISE_CF_MODELS_DIR"]))
    # the retriever serves the registry's champion (whatever other tests of this session registered before)
    registry = Registry(RegistrySettings(mlflow_tracking_uri=stack.env()["PICKWISE_MLFLOW_TRACKING_URI"]))
    version = registry.register("pickwise-cf-retail", artifact_dir=saved, tags={"source": "e2e tiny model"})
    registry.set_alias("pickwise-cf-retail", "champion", version)
    label = f"pickwise-cf-retail/{version}@champion ({model.version})"

    def served() -> bool:
        checks = httpx.get(stack.url("retriever") + "/readyz", timeout=5).json()["checks"]
        return checks.get("cf_models", {}).get("versions", {}).get("retail") == label
    eventually(served, f"the retriever serving CF model {label}")

    def answered() -> bool:  # the gateway asks again a few seconds after it last saw no model
        body = gateway.get("/v1/users/probe/recommendations", params={"catalog": "retail", "k": 1}).json()
        return body.get("model_version") == label
    eventually(answered, f"the gateway's feed answered by CF model {model.version}")
    return model


def served_by(body: dict[str, Any], model: cf.CfModel) -> bool:
    """The answer names the registered version of ``model`` (``pickwise-cf-retail/<n>@champion (<cf-v…>)``)."""
    return str(body.get("model_version", "")).startswith("pickwise-cf-retail/") and str(
        body["model_version"]).endswith(f"@champion ({model.version})")


def feed(gateway: httpx.Client, user: str, **params: Any) -> dict[str, Any]:
    response = gateway.get(f"/v1/users/{user}/recommendations", params={"catalog": "retail", **params})
    assert response.status_code == 200, response.text
    return response.json()


def ids_of(body: dict[str, Any]) -> list[str]:
    return [i["item"]["item_id"] for i in body["items"]]


def post_event(gateway: httpx.Client, **event: Any) -> None:
    response = gateway.post("/v1/events", json={"catalog": "retail", **event})
    assert response.status_code == 202, response.text


def test_unknown_user_gets_cold_start_popularity_of_the_model(gateway, retail_model) -> None:
    body = feed(gateway, f"new-{uuid.uuid4().hex[:8]}", k=4)
    assert body["cold_start"] is True
    assert served_by(body, retail_model) and body["catalog"] == "retail"
    assert ids_of(body) == [item for item, _ in retail_model.popularity[:4]]


def test_a_purchase_changes_the_feed_without_retraining_and_a_dismiss_hides_it(gateway, retail_model) -> None:
    user = f"buyer-{uuid.uuid4().hex[:8]}"
    bought = retail_model.item_ids[0]  # of the less popular taste: absent from the cold-start top 5
    before = feed(gateway, user, k=5)
    assert bought not in ids_of(before)

    post_event(gateway, type="purchase", user_id=user, item_id=bought, quantity=3)
    after = eventually(lambda: (b := feed(gateway, user, k=5, explain="true")) and bought in ids_of(b) and b,
                       "the purchase in the user's next feed")
    assert after["cold_start"] is False and served_by(after, retail_model)
    by_id = {i["item"]["item_id"]: i for i in after["items"]}
    assert "repeat" in by_id[bought]["sources"]
    # the folded-in history pulls the bought item's taste up: ALS scores its neighbours
    assert any("als" in i["sources"] for i in after["items"] if i["item"]["item_id"] in retail_model.item_ids[1:6])

    post_event(gateway, type="dismiss", user_id=user, item_id=bought)
    eventually(lambda: bought not in ids_of(feed(gateway, user, k=12)), "the dismissed item gone from the feed")


def test_similar_answers_cf_neighbours_and_bought_together_the_models_pairs(gateway, retail_model) -> None:
    first = retail_model.item_ids[0]
    similar = gateway.get(f"/v1/items/{first}/similar", params={"catalog": "retail", "k": 3})
    assert similar.status_code == 200, similar.text
    assert similar.json()["source"] == "cf" and served_by(similar.json(), retail_model)
    assert [c["item"]["item_id"] for c in similar.json()["candidates"]] == retail_model.item_ids[1:4]

    together = gateway.get(f"/v1/items/{first}/bought-together", params={"catalog": "retail", "k": 5})
    assert together.status_code == 200, together.text
    assert [(i["item"]["item_id"], i["lift"], i["support"]) for i in together.json()["items"]] == [
        (retail_model.item_ids[1], 5.0, 40), (retail_model.item_ids[GROUP], 1.5, 12)]


def test_an_item_outside_the_model_gets_content_neighbours(gateway, retail_model) -> None:
    response = gateway.get("/v1/popular", params={"catalog": "retail", "k": 3 * GROUP})
    outside = next(c["item"]["item_id"] for c in response.json()["candidates"]
                   if c["item"]["item_id"] not in retail_model.item_ids)
    similar = gateway.get(f"/v1/items/{outside}/similar", params={"catalog": "retail", "k": 3})
    assert similar.status_code == 200, similar.text
    assert similar.json()["source"] == "content"


@pytest.mark.parametrize("k", [0, 101])
def test_k_out_of_range_is_422(gateway, k: int) -> None:
    response = gateway.get("/v1/users/u1/recommendations", params={"catalog": "retail", "k": k})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "query.k"


def test_unknown_catalog_is_404(gateway) -> None:
    response = gateway.get("/v1/users/u1/recommendations", params={"catalog": "books"})
    assert response.status_code == 404
    assert response.json()["error"]["fields"][0]["field"] == "query.catalog"
