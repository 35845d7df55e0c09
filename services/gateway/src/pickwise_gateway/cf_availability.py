"""Which catalogs recently had no CF model (decision 0813): their feeds go straight to the content feed for a
few seconds, saving one retriever hop per feed; a newly trained model is asked for again within that time."""

from __future__ import annotations

from pickwise_gateway.ttl_cache import TTLCache

NO_MODEL_TTL_S = 3.0


class CfCatalogs:
    def __init__(self, ttl_s: float = NO_MODEL_TTL_S) -> None:
        self._without_model: TTLCache[bool] = TTLCache(64, ttl_s)

    def maybe_has_model(self, catalog: str) -> bool:
        return self._without_model.get(catalog) is None

    def no_model(self, catalog: str) -> None:
        self._without_model.put(catalog, True)
