"""Loading the reranker's models (at start-up and on admin reload), off the event loop."""

from __future__ import annotations

import logging
from typing import Any

import anyio

from pickwise_reranker import cross_encoder as ce
from pickwise_reranker import learned_ranker
from pickwise_reranker.config import RerankerSettings
from pickwise_reranker.ranking import Reranker

log = logging.getLogger("pickwise.reranker.models")


async def reload_models(reranker: Reranker, settings: RerankerSettings) -> None:
    """Swap in the newest ranker model; load the cross-encoder if it was not loaded yet."""
    ranker = await anyio.to_thread.run_sync(learned_ranker.load_newest, settings.ranker_model_dir)
    if reranker.cross_encoder is None:
        reranker.cross_encoder = await anyio.to_thread.run_sync(
            lambda: ce.load_configured(settings.reranker_model, max_length=settings.reranker_max_length,
                                       batch_size=settings.reranker_batch_size))
    reranker.ranker = ranker
    log.info("models: ranker=%s cross_encoder=%s", ranker.name if ranker else "absent",
             reranker.cross_encoder.name if reranker.cross_encoder else "absent")


def model_status(reranker: Reranker, settings: RerankerSettings) -> dict[str, Any]:
    """Readiness detail: which stages are present (both optional; absence is not a failure)."""
    scorer, ranker = reranker.cross_encoder, reranker.ranker
    return {
        "cross_encoder": scorer.name if scorer else "absent",
        "cross_encoder_configured": settings.reranker_model or None,
        "ranker": ranker.name if ranker else "absent",
        "ranker_validation_ndcg_at_10": (ranker.metadata.get("validation", {}).get("ndcg@10_ranker")
                                         if ranker else None),
        "ranker_model_dir": str(settings.ranker_model_dir),
    }
