"""BM25 behind a small interface, shared by ingest (builds and serialises) and the retriever (loads, scores).

The backend is bm25s (sparse, pre-computed scores); rank-bm25 is kept as ``RankBm25Index`` for the
comparison in docs/bm25.md. Tokenisation is ours on both sides, so model numbers such as ``2.4``, ``c11``
and single characters survive (bm25s's default pattern drops them).
"""

from __future__ import annotations

import io
import re
import tarfile
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from pickwise_common.schemas import Item

_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
# Bump when tokenize() or item_text() change: ingest re-indexes when the stored version differs.
TEXT_VERSION = 3
STOPWORDS = frozenset(
    "a an and are as at be by for from i in is it me of on or show some that the to want with my "
    "need looking get find buy any".split())


def tokenize(text: str) -> list[str]:
    """Lower-case word/number tokens; a trailing plural ``s`` is dropped from longer alphabetic words.

    Model names are written both ways ("Hot 10" / "hot10", "C11" / "c 11"), so a word followed by a number
    also yields the two joined ("hot 10" → hot, 10, hot10), on the catalog side and the query side."""
    tokens: list[str] = []
    previous = ""
    for token in _TOKEN.findall(text.lower()):
        if token in STOPWORDS:
            previous = ""
            continue
        if len(token) > 3 and token.isalpha() and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        tokens.append(token)
        if previous.isalpha() and token[0].isdigit():
            tokens.append(previous + token)
        previous = token
    return tokens


def item_text(item: Item) -> str:
    """The text of an item that ingest indexes for BM25 and embeds for dense search: a phone's brand, model,
    colour, sizes and band; an item without brand and model (the retail catalog) its title, category and
    stock code."""
    if not item.brand and not item.model:
        return " ".join(w for w in (item.title, item.category, str(item.attrs.get("stock_code", ""))) if w)
    words = [item.brand, item.model, item.color or ""]
    if item.ram_gb:
        words.append(f"{item.ram_gb:g} GB RAM")
    if item.storage_gb:
        words.append(f"{item.storage_gb:g} GB storage")
    words.append("keypad feature phone" if item.attrs.get("feature_phone") else f"{item.category} smartphone")
    if item.price_band:
        words.append({"budget": "budget", "mid": "mid-range", "premium": "premium", "flagship": "flagship"}
                     [item.price_band])
    return " ".join(w for w in words if w)


class Bm25Backend(Protocol):
    size: int

    def scores(self, query_tokens: list[str]) -> np.ndarray: ...


class Bm25sIndex:
    """bm25s (Lucene variant, k1=1.5, b=0.75): scores for every document as one float32 array."""

    def __init__(self, model: object, size: int) -> None:
        self._model = model
        self.size = size
        self._vocab: dict[str, int] = getattr(model, "vocab_dict", {}) or {}

    @classmethod
    def build(cls, documents: list[list[str]]) -> Bm25sIndex:
        import bm25s

        if not documents:
            return cls(None, 0)
        model = bm25s.BM25()
        # bm25s accepts a list of token lists (it builds the vocabulary itself)
        model.index([doc or ["_empty_"] for doc in documents], show_progress=False)
        return cls(model, len(documents))

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        known = [t for t in query_tokens if t in self._vocab]
        if not known or self._model is None:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)  # type: ignore[attr-defined]

    def to_bytes(self) -> bytes:
        if self._model is None:
            raise ValueError("an empty BM25 index has nothing to serialise")
        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory() as tmp:
            self._model.save(tmp, show_progress=False)  # type: ignore[attr-defined]
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for path in sorted(Path(tmp).iterdir()):
                    tar.add(path, arcname=path.name)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes, size: int) -> Bm25sIndex:
        import bm25s

        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
                tar.extractall(tmp, filter="data")
            model = bm25s.BM25.load(tmp)
        return cls(model, size)


class RankBm25Index:
    """rank-bm25's Okapi BM25 (pure Python scoring loop), for comparison."""

    def __init__(self, documents: list[list[str]]) -> None:
        from rank_bm25 import BM25Okapi

        self._model = BM25Okapi([doc or ["_empty_"] for doc in documents])
        self.size = len(documents)

    @classmethod
    def build(cls, documents: list[list[str]]) -> RankBm25Index:
        return cls(documents)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        return np.asarray(self._model.get_scores(query_tokens), dtype=np.float32)
