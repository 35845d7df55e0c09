"""Loading the reranker's models (at start-up, every ``registry_poll_s`` and on admin reload), off the event loop:
the learned rankers per registry alias (``served_rankers``) and the cross-encoder."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio

from pickwise_common.registry import Registry
from pickwise_reranker import cross_encoder as ce
from pickwise_reranker.config import RerankerSettings
from pickwise_reranker.ranking import Reranker
from pickwise_reranker.served_rankers import RankerSlots

log = logging.getLogger("pickwise.reranker.models")


def ranker_slots(settings: RerankerSettings) -> RankerSlots:
    """Slots that follow the registry's aliases, or only ``ranker_model_dir`` when the registry is off."""
    registry = Registry(settings) if settings.registry_enabled else None
    return RankerSlots(model_dir=settings.ranker_model_dir, registry=registry, name=settings.ranker_registered_name)


async def reload_models(reranker: Reranker, settings: RerankerSettings, *, force: bool = True) -> list[str]:
    """Resolve the rankers (``force``: reload even an unchanged version); load the cross-encoder if it was not
    loaded yet. Returns the aliases whose ranker changed."""
    changed = await anyio.to_thread.run_sync(lambda: reranker.rankers.refresh(force=force))
    if reranker.cross_encoder is None:
        reranker.cross_encoder = await anyio.to_thread.run_sync(
            lambda: ce.load_configured(settings.reranker_model, max_length=settings.reranker_max_length,
                                       batch_size=settings.reranker_batch_size))
    champion = reranker.rankers.pick("champion")
    log.info("models: ranker=%s cross_encoder=%s", champion.label if champion else "absent",
             reranker.cross_encoder.name if reranker.cross_encoder else "absent")
    return changed


async def poll_rankers(reranker: Reranker, interval_s: float) -> None:
    """Follow the registry's aliases every ``interval_s`` for ever (a task of the lifespan); a failed round is
    logged and the next one tries again (``RankerSlots.refresh`` already keeps what is loaded)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await anyio.to_thread.run_sync(reranker.rankers.refresh)
        except Exception:  # noqa: BLE001 - keep serving the rankers we have; try again next round
            log.exception("ranker refresh failed")


def model_status(reranker: Reranker, settings: RerankerSettings) -> dict[str, Any]:
    """Readiness detail: which stages are present (both optional; absence is not a failure) and which ranker
    answers each alias."""
    scorer = reranker.cross_encoder
    champion = reranker.rankers.pick("champion")
    return {
        "cross_encoder": scorer.name if scorer else "absent",
        "cross_encoder_configured": settings.reranker_model or None,
        "ranker": champion.model.name if champion else "absent",
        "ranker_validation_ndcg_at_10": (champion.model.metadata.get("validation", {}).get("ndcg@10_ranker")
                                         if champion else None),
        "ranker_model_dir": str(settings.ranker_model_dir),
        "registry": settings.mlflow_tracking_uri if settings.registry_enabled else "off",
        "rankers": reranker.rankers.status(),
    }
