"""Settings of the retriever service (env prefix ``PICKWISE_``)."""

from __future__ import annotations


from pickwise_common.settings import CatalogSettings, MilvusSettings, ModelSettings, PostgresSettings, RedisSettings, ServiceSettings


class RetrieverSettings(ServiceSettings, PostgresSettings, RedisSettings, MilvusSettings, ModelSettings, CatalogSettings):
    service_name: str = "retriever"
    port: int = 8001
