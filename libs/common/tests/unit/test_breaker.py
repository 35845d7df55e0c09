"""Circuit breaker state machine and retry policy (DESIGN §5)."""

import random

import pytest

from pickwise_common.breaker import BreakerState, CircuitBreaker, RetryPolicy

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(name="t", window=20, min_calls=10, failure_ratio=0.5, open_s=10.0, clock=clock)


def test_stays_closed_below_minimum_calls_even_if_all_fail() -> None:
    breaker = make_breaker(FakeClock())
    for _ in range(9):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_opens_at_half_failures_once_ten_calls_seen() -> None:
    breaker = make_breaker(FakeClock())
    for _ in range(5):
        breaker.record_success()
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()  # 5 of 10 failed
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_window_forgets_old_failures() -> None:
    breaker = make_breaker(FakeClock())
    for _ in range(9):
        breaker.record_failure()
    for _ in range(20):
        breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_half_open_after_open_period_allows_one_trial() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 9.9
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.2
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow(), "only one trial call while half-open"


def test_successful_trial_closes() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_failed_trial_reopens_for_another_period() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 5
    assert not breaker.allow()
    clock.now += 5
    assert breaker.state is BreakerState.HALF_OPEN


def test_state_changes_are_reported() -> None:
    clock = FakeClock()
    seen: list[BreakerState] = []
    breaker = make_breaker(clock)
    breaker.on_state_change = lambda name, state: seen.append(state)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 10
    breaker.allow()
    breaker.record_success()
    assert seen == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_retry_delays_grow_exponentially_and_are_capped() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_ms=20, max_delay_ms=100, jitter=False)
    assert list(policy.delays_s()) == [0.02, 0.04, 0.08, 0.1]


def test_retry_jitter_stays_within_cap() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay_ms=50, max_delay_ms=1000, jitter=True)
    rng = random.Random(7)
    for _ in range(100):
        delays = list(policy.delays_s(rng))
        assert len(delays) == 3
        assert all(0 <= d <= cap for d, cap in zip(delays, (0.05, 0.1, 0.2), strict=True))


def test_single_attempt_policy_never_retries() -> None:
    assert list(RetryPolicy(max_attempts=1).delays_s()) == []


@pytest.mark.parametrize(("method", "idempotent", "expected"), [
    ("GET", None, True), ("PUT", None, True), ("DELETE", None, True),
    ("POST", None, False), ("PATCH", None, False), ("POST", True, True), ("GET", False, False),
])
def test_only_idempotent_calls_are_retried(method: str, idempotent: bool | None, expected: bool) -> None:
    assert RetryPolicy.may_retry(method, idempotent=idempotent) is expected


def test_retryable_statuses_are_gateway_errors_only() -> None:
    assert RetryPolicy.retryable_status(503)
    assert not RetryPolicy.retryable_status(500)
    assert not RetryPolicy.retryable_status(404)


def test_cancelled_trial_reopens_instead_of_blocking_forever() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_cancelled()
    assert breaker.state is BreakerState.OPEN
    clock.now += 10
    assert breaker.allow(), "after another open period a new trial goes out"


def test_cancelled_call_while_closed_changes_nothing() -> None:
    breaker = make_breaker(FakeClock())
    for _ in range(20):
        breaker.record_cancelled()
    assert breaker.state is BreakerState.CLOSED


def test_trial_that_never_reports_is_given_up_after_an_open_period() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 10
    assert breaker.allow()  # the trial's caller vanishes without recording anything
    clock.now += 10
    assert breaker.allow(), "a lost trial must not hold the half-open slot forever"
