"""Embeddings: the bundled model, the query cache, the BGE query instruction, no downloads."""

import numpy as np
import pytest

from pickwise_common.embeddings import BGE_QUERY_INSTRUCTION, Embedder, EmbeddingModelMissing, resolve_model_path

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(cache_size=2)


def test_bundled_model_gives_unit_vectors(embedder: Embedder) -> None:
    docs = embedder.encode_documents(["Samsung Galaxy M31 6 GB RAM", "Nokia 105 keypad feature phone"])
    assert docs.shape == (2, embedder.dim) == (2, 384)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)


def test_query_cache_hits_and_evicts(embedder: Embedder) -> None:
    first = embedder.encode_query("samsung phone")
    hits = embedder.cache_hits
    again = embedder.encode_query("  Samsung Phone ")
    assert embedder.cache_hits == hits + 1
    assert np.array_equal(first, again)
    embedder.encode_query("nokia")
    embedder.encode_query("apple")
    assert len(embedder._cache) == 2


def test_similar_texts_are_closer(embedder: Embedder) -> None:
    q = embedder.encode_query("keypad phone")
    docs = embedder.encode_documents(["Nokia 105 keypad feature phone", "Apple iPhone 13 Pro flagship"])
    assert float(docs[0] @ q) > float(docs[1] @ q)


def test_bge_models_get_the_query_instruction_others_do_not() -> None:
    assert Embedder("BAAI/bge-base-en-v1.5").query_instruction == BGE_QUERY_INSTRUCTION
    assert Embedder().query_instruction == ""


def test_a_model_without_local_files_is_refused_not_downloaded() -> None:
    with pytest.raises(EmbeddingModelMissing, match="no local files"):
        resolve_model_path("pickwise-tests/no-such-model")
