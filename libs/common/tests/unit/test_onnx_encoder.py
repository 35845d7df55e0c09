"""The ONNX Runtime query encoder: same vectors as sentence-transformers, built locally, torch when it cannot be."""

import logging
from pathlib import Path

import numpy as np
import pytest

from pickwise_common.embeddings import Embedder, bundled_model_path
from pickwise_common.onnx_encoder import fingerprint, model_files

pytestmark = pytest.mark.unit

TEXTS = ["samsung phone under 15k", "phone", "Nokia 105 keypad feature phone",
         "redmi note 11 pro 8gb ram 128gb storage blue with a 108 MP camera and 67 W fast charging"]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return Embedder(backend="torch").encode_documents(TEXTS)


def test_onnx_fp32_embeddings_match_torch(onnx_dir: Path, torch_vectors: np.ndarray) -> None:
    embedder = Embedder(backend="onnx", onnx_dir=onnx_dir)
    vectors = embedder.encode_documents(TEXTS)
    assert embedder.backend == "onnx"
    assert vectors.shape == torch_vectors.shape == (4, 384)
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) >= 0.999


def test_a_query_alone_matches_the_same_text_in_a_padded_batch(onnx_dir: Path) -> None:
    embedder = Embedder(backend="onnx", onnx_dir=onnx_dir)
    batch = embedder.encode_documents(TEXTS)
    assert float(embedder.encode_query("Phone") @ batch[1]) >= 0.9999


def test_onnx_int8_stays_close_to_torch(onnx_dir: Path, torch_vectors: np.ndarray) -> None:
    vectors = Embedder(backend="onnx", onnx_dir=onnx_dir, onnx_int8=True).encode_documents(TEXTS)
    assert np.min(np.sum(vectors * torch_vectors, axis=1)) >= 0.98


def test_the_export_is_built_once_and_reused(onnx_dir: Path) -> None:
    path = model_files(bundled_model_path(), onnx_dir, quantize=False)
    built_at = path.stat().st_mtime_ns
    assert model_files(bundled_model_path(), onnx_dir, quantize=False) == path
    assert path.stat().st_mtime_ns == built_at
    assert path.parent.name == fingerprint(bundled_model_path())


def test_a_changed_model_file_changes_the_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hidden_size": 384}')
    (tmp_path / "model.safetensors").write_bytes(b"weights-1")
    before = fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"weights-2")
    assert fingerprint(tmp_path) != before


def test_an_unloadable_onnx_file_falls_back_to_torch(tmp_path: Path, torch_vectors: np.ndarray,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / fingerprint(bundled_model_path())
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    embedder = Embedder(backend="onnx", onnx_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="pickwise.embeddings"):
        vectors = embedder.encode_documents(TEXTS[:2])
    assert embedder.backend == "torch"
    assert embedder.describe() == "all-MiniLM-L6-v2 (torch)"
    assert "falling back to torch" in caplog.text
    assert np.allclose(vectors, torch_vectors[:2], atol=1e-5)


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="embedding backend"):
        Embedder(backend="tensorflow")
