"""Settings of the session service (env prefix ``PICKWISE_``)."""

from __future__ import annotations

from pickwise_common.features import AFFINITY_HALF_LIFE_H
from pickwise_common.settings import PostgresSettings, RedisSettings, ServiceSettings


class SessionSettings(ServiceSettings, PostgresSettings, RedisSettings):
    service_name: str = "session"
    port: int = 8004
    # the event-consumer caches this many recent turns per session in sess:{sid}
    session_cache_turns: int = 20
    affinity_half_life_h: float = AFFINITY_HALF_LIFE_H
