import pytest

from pickwise_gateway.exploration import RandPair, apply, rand_pair

pytestmark = pytest.mark.unit


def test_the_same_request_id_makes_the_same_choice() -> None:
    assert [rand_pair(f"r{i}", 10, 0.5) for i in range(50)] == [rand_pair(f"r{i}", 10, 0.5) for i in range(50)]


def test_share_zero_never_explores() -> None:
    assert all(rand_pair(f"r{i}", 10, 0.0) is None for i in range(500))


def test_a_page_of_one_item_never_explores() -> None:
    assert all(rand_pair(f"r{i}", 1, 1.0) is None for i in range(100))


def test_share_of_exploring_requests_is_close_to_the_setting() -> None:
    explored = sum(rand_pair(f"r{i}", 10, 0.05) is not None for i in range(20_000)) / 20_000
    assert 0.04 < explored < 0.06


@pytest.mark.parametrize("n_items", [2, 3, 7, 10, 50])
def test_pair_is_uniform_within_the_first_ten_positions(n_items: int) -> None:
    choices = [rand_pair(f"r{i}", n_items, 1.0) for i in range(6000)]
    pairs = [c.pair for c in choices if c is not None]
    top = min(10, n_items) - 2
    assert set(pairs) == set(range(top + 1))
    expected = len(pairs) / (top + 1)
    assert all(abs(pairs.count(k) - expected) < 0.2 * expected for k in range(top + 1))


def test_half_of_the_pairs_are_swapped() -> None:
    swapped = [c.swapped for i in range(6000) if (c := rand_pair(f"r{i}", 10, 1.0)) is not None]
    assert 0.46 < sum(swapped) / len(swapped) < 0.54


def test_apply_exchanges_the_pair_only_when_swapped() -> None:
    page = ["a", "b", "c", "d"]
    assert apply(page, RandPair(pair=1, swapped=True)) == ["a", "c", "b", "d"]
    assert apply(page, RandPair(pair=1, swapped=False)) == page
    assert apply(page, None) == page
    assert page == ["a", "b", "c", "d"]


def test_record_is_the_impressions_explore_field() -> None:
    assert RandPair(pair=3, swapped=True).record() == {"pair": 3, "swapped": 1}
