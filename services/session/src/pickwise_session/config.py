"""Settings of the session service (env prefix ``PICKWISE_``)."""

from __future__ import annotations


from pickwise_common.settings import PostgresSettings, RedisSettings, ServiceSettings


class SessionSettings(ServiceSettings, PostgresSettings, RedisSettings):
    service_name: str = "session"
    port: int = 8004
