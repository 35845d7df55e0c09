"""Rate limits of the public API (decision 0753): moving windows of the ``limits`` library kept in Redis, so
every gateway replica counts against the same limit and a restart forgets nothing; while Redis cannot be
reached the same windows are kept in process (per replica) and ``pickwise_gateway_rate_limit_backend`` says so.
A rate limiter never fails a request: a storage error only switches the backend."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from pickwise_gateway.config import GatewaySettings

log = logging.getLogger("pickwise.gateway.rate_limit")

KEY_PREFIX = "pickwise-rl"
POOL_URI = "async+redis://pool:6379"
BACKEND = Gauge("pickwise_gateway_rate_limit_backend", "Where rate-limit windows are kept (1 = this one)",
                ["backend"])
FALLBACKS = Counter("pickwise_gateway_rate_limit_fallbacks_total",
                    "Rate-limit checks answered in process because Redis failed")
STORAGE_ERRORS = (StorageError, RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class Limit:
    """One window to charge: a rate item and who it counts (``key:web``, ``user:u-1``, ``ip:10.0.0.7``)."""

    item: RateLimitItem
    identity: str


class RateLimits:
    def __init__(self, settings: GatewaySettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_key: list[RateLimitItem] = [RateLimitItemPerMinute(settings.rate_limit_per_minute)]
        if settings.rate_limit_burst:
            self.per_key.append(RateLimitItemPerSecond(settings.rate_limit_burst))
        self.per_client = RateLimitItemPerMinute(settings.rate_limit_per_client_per_minute)
        self.unauthenticated = RateLimitItemPerMinute(settings.rate_limit_unauthenticated_per_minute)
        self.redis_retry_s = settings.rate_limit_redis_retry_s
        self.clock = clock
        self.memory = MovingWindowRateLimiter(MemoryStorage())
        self.shared: MovingWindowRateLimiter | None = None
        self._redis_down_until = 0.0
        self._publish("memory")

    def use_redis(self, connection_pool: Any) -> None:
        """Keep the windows in the Redis behind ``connection_pool`` (the process's one pool; the URI only
        names the driver, the pool carries the address)."""
        storage = RedisStorage(POOL_URI, implementation="redispy", key_prefix=KEY_PREFIX, wrap_exceptions=True,
                               connection_pool=connection_pool)
        self.shared = MovingWindowRateLimiter(storage)
        self._publish("redis")

    def key_limits(self, key_id: str) -> list[Limit]:
        return [Limit(item, f"key:{key_id}") for item in self.per_key]

    def client_limits(self, client: str) -> list[Limit]:
        return [Limit(self.per_client, client)]

    def unauthenticated_limits(self, ip: str) -> list[Limit]:
        return [Limit(self.unauthenticated, f"unauth:ip:{ip}")]

    async def check(self, limits: list[Limit]) -> float:
        """Charge one request to every window. Returns 0 when allowed, else the seconds until the first
        full window has room again."""
        limiter = self._limiter()
        try:
            return await self._check(limiter, limits)
        except STORAGE_ERRORS as exc:
            if limiter is self.memory:
                raise
            log.warning("rate limits in process for %.0f s: Redis failed (%s)", self.redis_retry_s,
                        type(exc).__name__)
            self._redis_down_until = self.clock() + self.redis_retry_s
            self._publish("memory")
            FALLBACKS.inc()
            return await self._check(self.memory, limits)

    def _limiter(self) -> MovingWindowRateLimiter:
        if self.shared is None:
            return self.memory
        if self.clock() < self._redis_down_until:
            FALLBACKS.inc()
            return self.memory
        self._publish("redis")
        return self.shared

    @staticmethod
    async def _check(limiter: MovingWindowRateLimiter, limits: list[Limit]) -> float:
        for limit in limits:
            if not await limiter.hit(limit.item, limit.identity):
                stats = await limiter.get_window_stats(limit.item, limit.identity)
                return max(0.0, stats.reset_time - time.time())
        return 0.0

    @staticmethod
    def retry_after_s(wait_s: float) -> int:
        return max(1, math.ceil(wait_s))

    @staticmethod
    def _publish(backend: str) -> None:
        for name in ("redis", "memory"):
            BACKEND.labels(name).set(1 if name == backend else 0)
