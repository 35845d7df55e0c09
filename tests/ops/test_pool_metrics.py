"""The connection-pool collector in pickwise_common.metrics reports what the pools hold."""

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pickwise_common.metrics import PoolCollector

pytestmark = pytest.mark.unit


class _AsyncpgPoolShape:
    """The three asyncpg.Pool methods the collector reads."""

    def __init__(self, size: int, idle: int, max_size: int) -> None:
        self.size, self.idle, self.max_size = size, idle, max_size

    def get_size(self) -> int:
        return self.size

    def get_idle_size(self) -> int:
        return self.idle

    def get_max_size(self) -> int:
        return self.max_size


def test_postgres_and_redis_pool_usage_is_exposed_by_state() -> None:
    import redis.asyncio as aioredis

    collector = PoolCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", max_connections=7)
    collector.track_postgres("session", _AsyncpgPoolShape(size=4, idle=1, max_size=10))
    collector.track_redis("session", client)

    text = generate_latest(registry).decode()

    assert 'pickwise_postgres_pool_connections{service="session",state="in_use"} 3.0' in text
    assert 'pickwise_postgres_pool_connections{service="session",state="idle"} 1.0' in text
    assert 'pickwise_postgres_pool_max_connections{service="session"} 10.0' in text
    assert 'pickwise_redis_pool_max_connections{service="session"} 7.0' in text
    assert 'pickwise_redis_pool_connections{service="session",state="in_use"} 0.0' in text


def test_a_forgotten_pool_is_no_longer_reported() -> None:
    collector = PoolCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.track_postgres("retriever", _AsyncpgPoolShape(size=2, idle=2, max_size=5))
    collector.forget("retriever", "postgres")

    text = generate_latest(registry).decode()

    assert 'service="retriever"' not in text
    assert "# TYPE pickwise_postgres_pool_connections gauge" in text
