"""event-consumer service: wiring only. The consumer loops run as tasks of the lifespan; shutdown lets
each finish and commit its batch. HTTP serves only health, readiness (with the loops' state) and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from pickwise_common import resources
from pickwise_common.app import service_app
from pickwise_event_consumer.config import EventConsumerSettings
from pickwise_event_consumer.consumer import ConsumerLoop, StoreBackoff, TopicKeeper
from pickwise_event_consumer.feature_update import FeatureParams, FeatureWriter
from pickwise_event_consumer.processor import EventProcessor, Topics


def build_loops(settings: EventConsumerSettings, processor: EventProcessor, topics: Topics) -> list[ConsumerLoop]:
    """The main loop (interactions, session turns), the impressions loop and one delay-aware loop per retry
    stage, each its own consumer group. Impressions (one per response) have their own group so a burst of them
    never delays the clicks a feed must reflect within a second (decision 1001b)."""
    backoff = StoreBackoff(settings.store_backoff_initial_ms / 1000, settings.store_backoff_max_ms / 1000)
    loops = [ConsumerLoop("main", settings, [topics.interactions, topics.sessions], backoff=backoff,
                          group_id=settings.consumer_group, handler=processor.handle,
                          batch_max=settings.consumer_batch_max, poll_ms=settings.consumer_poll_ms,
                          metadata_max_age_ms=5000, fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms),
             ConsumerLoop("impressions", settings, [topics.impressions], backoff=backoff,
                          group_id=f"{settings.consumer_group}.{topics.impressions}", handler=processor.handle,
                          batch_max=settings.consumer_batch_max, poll_ms=settings.consumer_poll_ms,
                          min_batch_interval_s=settings.impressions_batch_interval_ms / 1000,
                          metadata_max_age_ms=5000, fetch_max_wait_ms=settings.impressions_fetch_max_wait_ms)]
    for topic, delay_s in topics.ladder.stages:
        loops.append(ConsumerLoop(topic.rsplit(".", 1)[-1], settings, [topic], backoff=backoff,
                                  group_id=f"{settings.consumer_group}.{topic}", handler=processor.handle,
                                  batch_max=settings.consumer_batch_max, poll_ms=max(settings.consumer_poll_ms, 200),
                                  wait_due=True, max_poll_interval_ms=int(delay_s * 1000) + 120_000,
                                  metadata_max_age_ms=5000))
    return loops


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: EventConsumerSettings = app.state.settings
    topics: Topics = getattr(app.state, "topics", None) or Topics()
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(resources.postgres_pool(app, settings))
        redis = await stack.enter_async_context(resources.redis_client(app, settings))
        producer = await stack.enter_async_context(
            resources.kafka_producer(app, settings, service="event-consumer"))
        features = FeatureWriter(redis, FeatureParams(
            half_life_h=settings.affinity_half_life_h, clicks_cap=settings.clicks_cap,
            seen_ttl_s=settings.seen_ttl_s, pop_hour_ttl_s=settings.pop_hour_ttl_s,
            user_ttl_s=settings.user_features_ttl_s, popularity_max_items=settings.popularity_max_items,
            shown_ttl_s=settings.user_shown_ttl_s))
        processor = EventProcessor(pool=pool, redis=redis, producer=producer, features=features, topics=topics,
                                   session_cache_ttl_s=settings.session_cache_ttl_s,
                                   session_cache_turns=settings.session_cache_turns,
                                   probe_timeout_s=settings.store_probe_timeout_ms / 1000)
        loops = build_loops(settings, processor, topics)
        keeper = TopicKeeper(settings, topics.all, loops, interval_s=settings.topic_check_interval_s)
        try:
            await keeper.check()
        except Exception as exc:  # the broker may come later; the keeper keeps trying
            loops[0].state.last_error = f"topics: {exc!r}"
        for loop in loops:
            loop.start()
        keeper.start()
        app.state.consumer_loops = loops
        app.state.topic_keeper = keeper

        async def consumers() -> dict[str, Any]:
            return {loop.name: {"group": loop.group_id, "assigned_partitions": loop.state.assigned,
                                "records": loop.state.records, "restarts": loop.state.restarts,
                                "errors": loop.state.errors, "lag": loop.state.lag,
                                "paused_for_store": loop.state.paused_for_store,
                                "store_pauses": loop.state.store_pauses}
                    for loop in loops} | {"topic_recreations": keeper.recreations}

        app.state.readiness.add("consumers", consumers, required=False)
        try:
            yield
        finally:
            await keeper.stop()
            for loop in loops:
                await loop.stop()


def create_app(settings: EventConsumerSettings | None = None, *, topics: Topics | None = None) -> FastAPI:
    settings = settings or EventConsumerSettings()
    app = service_app("event-consumer", settings, lifespan=lifespan,
                      description="Kafka consumers to Redis features and the Postgres event log; retry topics "
                                  "and DLQ.")
    app.state.topics = topics or Topics()
    return app
