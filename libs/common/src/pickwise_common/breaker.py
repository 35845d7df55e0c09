"""Circuit breaker per downstream (DESIGN §5) and the retry policy for idempotent calls.

Breaker: opens at >= 50 % failures over the last 20 calls once at least 10 were seen; after 10 s it
lets one trial call through (half-open); that call's outcome closes or re-opens it. A trial that is
cancelled (the caller's ``asyncio.wait_for`` ran out) counts as a failed trial, and a trial that never
reports at all is given up after another open period, so a lost trial cannot block a downstream forever.
"""

from __future__ import annotations

import enum
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


class BreakerState(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class CircuitBreaker:
    name: str
    window: int = 20
    min_calls: int = 10
    failure_ratio: float = 0.5
    open_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    on_state_change: Callable[[str, BreakerState], None] | None = None
    _outcomes: deque[bool] = field(init=False)
    _state: BreakerState = field(init=False, default=BreakerState.CLOSED)
    _opened_at: float = field(init=False, default=0.0)
    _trial_in_flight: bool = field(init=False, default=False)
    _trial_started_at: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._outcomes = deque(maxlen=self.window)

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self.clock() - self._opened_at >= self.open_s:
            self._set_state(BreakerState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now. In half-open only one trial call at a time is allowed."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN:
            now = self.clock()
            if not self._trial_in_flight or now - self._trial_started_at >= self.open_s:
                self._trial_in_flight = True
                self._trial_started_at = now
                return True
        return False

    def record_success(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._outcomes.clear()
            self._trial_in_flight = False
            self._set_state(BreakerState.CLOSED)
            return
        self._outcomes.append(True)

    def record_failure(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._trial_in_flight = False
            self._open()
            return
        self._outcomes.append(False)
        failures = self._outcomes.count(False)
        if len(self._outcomes) >= self.min_calls and failures / len(self._outcomes) >= self.failure_ratio:
            self._open()

    def record_cancelled(self) -> None:
        """The call was cancelled before it had an outcome. A cancelled half-open trial is a failed trial
        (it was slower than its caller's budget); a cancelled call while closed says nothing either way."""
        if self.state is BreakerState.HALF_OPEN and self._trial_in_flight:
            self._trial_in_flight = False
            self._open()

    def _open(self) -> None:
        self._opened_at = self.clock()
        self._outcomes.clear()
        self._set_state(BreakerState.OPEN)

    def _set_state(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self.on_state_change is not None:
                self.on_state_change(self.name, state)


IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUS = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, only for idempotent calls."""

    max_attempts: int = 3
    base_delay_ms: float = 20.0
    max_delay_ms: float = 200.0
    jitter: bool = True

    def delays_s(self, rng: random.Random | None = None) -> Iterator[float]:
        """Delays before attempt 2, 3, ... (max_attempts - 1 of them)."""
        rng = rng or random.Random()
        for attempt in range(1, self.max_attempts):
            cap = min(self.max_delay_ms, self.base_delay_ms * 2 ** (attempt - 1))
            yield (rng.uniform(0, cap) if self.jitter else cap) / 1000.0

    @staticmethod
    def may_retry(method: str, *, idempotent: bool | None = None) -> bool:
        """POST is retried only when the caller vouches that it is idempotent (e.g. a pure read)."""
        if idempotent is not None:
            return idempotent
        return method.upper() in IDEMPOTENT_METHODS

    @staticmethod
    def retryable_status(status_code: int) -> bool:
        return status_code in RETRYABLE_STATUS
