"""The simulator's pure parts: shoppers, true utility and grades, queries, the click model, the loopback guard,
the token bucket and the summary."""

from __future__ import annotations

import random
from functools import lru_cache

import pytest

from pickwise_common.errors import InvalidInput
from pickwise_common.schemas import Item
from pickwise_common.settings import default_data_root
from pickwise_pipeline.click_model import ClickModel, browse, expected_utility
from pickwise_pipeline.shoppers import Shopper, draw_shopper, grade, query_for, session_queries, smartphones, utility
from pickwise_pipeline.simulate import (
    PageRecord,
    SessionRecord,
    TokenBucket,
    check_bounds,
    load_items,
    ranker_version,
    require_loopback,
    summarise,
)

pytestmark = pytest.mark.unit


@lru_cache(maxsize=1)
def catalog() -> tuple[Item, ...]:
    return tuple(load_items(default_data_root() / "flipkart_mobiles.csv"))


def shopper(**change: object) -> Shopper:
    base = dict(user_id="u", brands=("Samsung",), brand_loyalty=0.8, budget_inr=15000.0, price_sensitivity=2.0,
                ram_gb_min=6.0, storage_gb_min=128.0, rating_weight=0.5, use="camera")
    return Shopper(**(base | change))  # type: ignore[arg-type]


def phone(**change: object) -> Item:
    base = dict(item_id="x", title="t", brand="Samsung", ram_gb=6.0, storage_gb=128.0, price_inr=15000.0, rating=5.0)
    return Item(**(base | change))  # type: ignore[arg-type]


def test_utility_is_highest_for_an_item_that_meets_every_wish():
    s = shopper()
    best = utility(s, phone())
    assert 0.9 <= best <= 1.0
    assert utility(s, phone(brand="Nokia")) < best
    assert utility(s, phone(ram_gb=4.0)) < best
    assert utility(s, phone(storage_gb=64.0)) < best
    assert utility(s, phone(price_inr=18000.0)) < best
    assert utility(s, phone(rating=3.0)) < best


def test_utility_falls_faster_above_budget_for_a_price_sensitive_shopper():
    over = phone(price_inr=16500.0)
    assert utility(shopper(price_sensitivity=4.0), over) < utility(shopper(price_sensitivity=1.0), over)


def test_utility_stays_in_unit_interval_over_the_catalog():
    rng = random.Random(3)
    anchors = smartphones(catalog())
    for n in range(20):
        s = draw_shopper(f"u{n}", anchors, rng)
        values = [utility(s, item) for item in catalog()]
        assert all(0.0 <= u <= 1.0 for u in values)
        assert max(values) >= 0.45  # the anchor phone (or one like it) fits


def test_grades_discretise_utility_at_the_documented_thresholds():
    assert [grade(u) for u in (0.0, 0.19, 0.2, 0.44, 0.45, 0.69, 0.7, 1.0)] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_queries_are_never_empty_and_state_only_the_shoppers_own_wishes():
    rng = random.Random(11)
    anchors = smartphones(catalog())
    for n in range(300):
        s = draw_shopper(f"u{n}", anchors, rng)
        for q in session_queries(s, rng):
            assert q.strip() and len(q) <= 500
            assert q == " ".join(q.split())
            if s.ram_gb_min is None:
                assert " ram" not in q, q
            if not s.brands:
                assert not any(w in q for w in ("samsung", "redmi", "apple", "iphone", "vivo", "oppo", "realme")), q


def test_a_vague_query_still_names_something():
    s = shopper(brands=(), ram_gb_min=None, storage_gb_min=None)
    rng = random.Random(1)
    assert all(query_for(s, rng, specificity=0.0) for _ in range(50))


def test_click_model_examination_decays_with_position():
    model = ClickModel()
    curve = [model.examination(k) for k in range(10)]
    assert curve[0] == 1.0 and all(a > b for a, b in zip(curve, curve[1:], strict=False))


def test_click_rate_per_position_follows_examination_times_attractiveness():
    model = ClickModel(cart_scale=0.0)  # no purchase, so no stop: the pure position-based model
    rng = random.Random(5)
    pages = 20_000
    clicks = [0] * 10
    for _ in range(pages):
        for act in browse([0.8] * 10, rng, model):
            if act.action == "click":
                clicks[act.position] += 1
    for k in (0, 1, 4):
        expected = model.examination(k) * model.attractiveness(0.8)
        assert clicks[k] / pages == pytest.approx(expected, rel=0.1)


def test_purchases_follow_clicks_and_end_the_page():
    rng = random.Random(2)
    for _ in range(2000):
        acts = browse([1.0] * 10, rng)
        for n, act in enumerate(acts):
            if act.action == "purchase":
                assert n == len(acts) - 1
                assert acts[n - 1].action == "add_to_cart" and acts[n - 2].action == "click"


def test_useless_items_are_rarely_clicked():
    rng = random.Random(4)
    clicked = sum(bool(browse([0.0] * 10, rng)) for _ in range(5000))
    assert clicked / 5000 < 0.1


def test_expected_utility_weights_the_top_more():
    assert expected_utility([1.0] + [0.0] * 9) > expected_utility([0.0] * 9 + [1.0])


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:9", "http://[::1]:8000",
                                 "http://127.9.9.9"])
def test_loopback_gateways_are_accepted(url):
    assert require_loopback(url) == url


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "https://api.pickwise.example", "http://0.0.0.0:8000",
                                 "http://192.168.1.2"])
def test_other_gateways_are_refused_naming_the_field(url):
    with pytest.raises(InvalidInput) as refused:
        require_loopback(url)
    assert refused.value.fields[0]["field"] == "gateway"


@pytest.mark.parametrize(("sessions", "rate", "field"), [(0, 10, "sessions"), (100_001, 10, "sessions"),
                                                         (10, 0, "rate"), (10, 1000, "rate")])
def test_counts_and_rates_are_bounded(sessions, rate, field):
    with pytest.raises(InvalidInput) as refused:
        check_bounds(sessions, rate)
    assert refused.value.fields[0]["field"] == field


def test_token_bucket_paces_calls_at_its_rate():
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    bucket = TokenBucket(10.0, burst=1.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(21):
        bucket.take()
    assert now[0] == pytest.approx(2.0, abs=1e-6)


def test_ranker_version_is_read_from_model_versions_or_none():
    class Response:
        model_versions = {"ranker": "pickwise-ranker/3@champion"}

    class Old:
        model_extra = None

    assert ranker_version(Response()) == "pickwise-ranker/3@champion"
    assert ranker_version(Old()) == "none"


def test_summary_counts_ctr_per_variant_and_ranker():
    s = shopper()
    clicked = PageRecord("q", "r1", "A", "v1", ["a", "b"], [0.9, 0.1],
                         [{"position": 0, "item_id": "a", "type": "click", "event_id": "e"}])
    unclicked = PageRecord("q", "r2", "B", "v2", ["a", "b"], [0.1, 0.9])
    summary = summarise([SessionRecord(s, "s1", [clicked]), SessionRecord(s, "s2", [unclicked])], 1.0, ClickModel())
    assert summary["sessions"] == 2 and summary["searches"] == 2 and summary["clicks"] == 1
    assert summary["by_variant"]["A"]["ctr"] == 1.0 and summary["by_variant"]["B"]["ctr"] == 0.0
    assert summary["by_ranker"]["v1"]["expected_true_utility"] > summary["by_ranker"]["v2"]["expected_true_utility"]


def test_the_command_refuses_a_remote_gateway_before_any_request(tmp_path, capsys):
    from pickwise_pipeline.cli import main

    code = main(["simulate", "--gateway", "http://10.1.2.3:8000", "--sessions", "5", "--out", str(tmp_path / "sim")])
    assert code == 2
    assert "loopback" in capsys.readouterr().err
    assert not (tmp_path / "sim").exists()
