"""Ingest's embedding cache: the same texts under the same model are encoded once."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pickwise_pipeline.ingest import embed_cached

pytestmark = pytest.mark.unit


class CountingEmbedder:
    def __init__(self, name: str = "mini (torch)") -> None:
        self.name = name
        self.encoded = 0

    def describe(self) -> str:
        return self.name

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_same_texts_and_model_are_encoded_once(tmp_path: Path) -> None:
    settings = SimpleNamespace(models_dir=tmp_path)
    embedder = CountingEmbedder()
    first, cached_first = embed_cached(settings, embedder, ["mug", "lunch bag"], "test")
    again, cached_again = embed_cached(settings, embedder, ["mug", "lunch bag"], "test")
    assert (cached_first, cached_again, embedder.encoded) == (False, True, 2)
    assert np.array_equal(first, again)


def test_other_texts_or_another_model_encode_again(tmp_path: Path) -> None:
    settings = SimpleNamespace(models_dir=tmp_path)
    embedder = CountingEmbedder()
    embed_cached(settings, embedder, ["mug", "lunch bag"], "test")
    _, cached = embed_cached(settings, embedder, ["mug", "lunch bags"], "test")
    other = CountingEmbedder("mini (onnx)")
    _, cached_other = embed_cached(settings, other, ["mug", "lunch bag"], "test")
    assert (cached, cached_other, other.encoded) == (False, False, 2)


def test_an_unreadable_cache_file_is_encoded_again(tmp_path: Path) -> None:
    settings = SimpleNamespace(models_dir=tmp_path)
    embedder = CountingEmbedder()
    embed_cached(settings, embedder, ["mug"], "test")
    for path in (tmp_path / "embeddings").iterdir():
        path.write_bytes(b"not numpy")
    vectors, cached = embed_cached(settings, embedder, ["mug"], "test")
    assert not cached and vectors.shape == (1, 2) and embedder.encoded == 2
