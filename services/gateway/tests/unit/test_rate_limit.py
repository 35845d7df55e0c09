import pytest

from pickwise_gateway.rate_limit import TokenBucketLimiter

pytestmark = pytest.mark.unit


def test_burst_then_refuse_then_refill() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(60, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("k") for _ in range(3)] == [0, 0, 0]
    wait = limiter.acquire("k")
    assert wait == pytest.approx(1.0)
    assert limiter.retry_after_s(wait) == 1
    now[0] += 1.0
    assert limiter.acquire("k") == 0


def test_keys_have_separate_buckets() -> None:
    limiter = TokenBucketLimiter(60, burst=1, clock=lambda: 0.0)
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0


def test_retry_after_rounds_up() -> None:
    assert TokenBucketLimiter.retry_after_s(0.01) == 1
    assert TokenBucketLimiter.retry_after_s(2.2) == 3
