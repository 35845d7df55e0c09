import pytest

from pickwise_gateway.ttl_cache import TTLCache

pytestmark = pytest.mark.unit


def test_entries_expire_after_ttl() -> None:
    now = [0.0]
    cache: TTLCache[str] = TTLCache(10, 5.0, clock=lambda: now[0])
    cache.put("q", "v")
    now[0] = 4.9
    assert cache.get("q") == "v"
    now[0] = 5.0
    assert cache.get("q") is None


def test_least_recently_used_is_evicted() -> None:
    cache: TTLCache[int] = TTLCache(2, 60.0, clock=lambda: 0.0)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_zero_ttl_disables_caching() -> None:
    cache: TTLCache[int] = TTLCache(10, 0.0)
    cache.put("a", 1)
    assert cache.get("a") is None and len(cache) == 0
