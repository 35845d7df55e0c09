import pytest

from pickwise_gateway.overshown import ShownState, counts, keep, overshown_ids, shown_state

pytestmark = pytest.mark.unit

IDS = ["a", "b", "c", "d", "e", "f"]


def test_over_shown_items_leave_the_page_when_enough_remain() -> None:
    state = ShownState(shown={"a": 8, "c": 9, "d": 7})
    assert keep(IDS, state, threshold=8, k=3) == ["b", "d", "e", "f"]


def test_threshold_zero_turns_the_over_shown_filter_off() -> None:
    assert keep(IDS, ShownState(shown={"a": 100}), threshold=0, k=3) == IDS


def test_dismissed_items_never_stay_even_with_the_filter_off() -> None:
    assert keep(IDS, ShownState(dismissed={"b", "e"}), threshold=0, k=3) == ["a", "c", "d", "f"]


def test_page_is_topped_up_with_the_least_shown_over_shown_items() -> None:
    state = ShownState(shown={"a": 20, "b": 9, "c": 12, "d": 30, "e": 10, "f": 1})
    assert keep(IDS, state, threshold=8, k=3) == ["b", "e", "f"]


def test_the_filter_never_empties_the_page() -> None:
    assert keep(["a", "b"], ShownState(dismissed={"a", "b"}), threshold=8, k=2) == ["a", "b"]


def test_counts_skip_values_that_are_not_numbers() -> None:
    assert counts({"a": "3", "b": "x", "c": None}) == {"a": 3}
    assert counts([("a", "2")]) == {"a": 2}


async def test_without_redis_or_user_there_is_nothing_to_filter_by() -> None:
    assert await shown_state(None, "u1", "flipkart", IDS, budget_ms=10) is None
    assert await shown_state(object(), None, "flipkart", IDS, budget_ms=10) is None
    assert await overshown_ids(None, "u1", "flipkart", 8, budget_ms=10) == set()


class BrokenRedis:
    def pipeline(self, transaction: bool = False) -> "BrokenRedis":
        return self

    def hmget(self, *args: object) -> None:
        return None

    def smismember(self, *args: object) -> None:
        return None

    async def execute(self) -> list[object]:
        raise ConnectionError("redis down")

    async def hgetall(self, key: str) -> dict[str, str]:
        raise ConnectionError("redis down")


async def test_redis_down_skips_the_filter() -> None:
    assert await shown_state(BrokenRedis(), "u1", "flipkart", IDS, budget_ms=10) is None
    assert await overshown_ids(BrokenRedis(), "u1", "flipkart", 8, budget_ms=10) == set()
