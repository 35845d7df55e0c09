"""Cross-encoder stage: a (query, item text) relevance model, loaded only from local files.

BGE rerankers and any other sequence-classification cross-encoder load through sentence-transformers'
``CrossEncoder`` (docs/decisions/0101-cross-encoder-through-sentence-transformers.md); scores are the
model's single logit through a sigmoid, so 0..1. Nothing is downloaded: the model is a local directory or
a repo id already in the Hugging Face cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pickwise_common.schemas import Item

log = logging.getLogger("pickwise.reranker.cross_encoder")

DISABLED_NAMES = frozenset({"", "none", "off", "false", "0"})


def resolve_model_path(name: str | None) -> Path | None:
    """A local directory for ``name`` (a path, or a repo id in the HF cache), or None when absent."""
    if name is None or name.strip().lower() in DISABLED_NAMES:
        return None
    path = Path(name).expanduser()
    if path.is_dir():
        return path if (path / "config.json").is_file() else None
    if "/" not in name or name.startswith(("/", ".", "~")):
        return None
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        local = Path(snapshot_download(repo_id=name, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError) as exc:
        log.info("cross-encoder %s is not in the local cache (%s): ranking without it", name, type(exc).__name__)
        return None
    return local if (local / "config.json").is_file() else None


def item_text(item: Item) -> str:
    """The passage a cross-encoder reads for an item: title plus the facts a query may ask about."""
    parts = [item.title or f"{item.brand} {item.model}", f"brand {item.brand}"]
    if item.ram_gb is not None:
        parts.append(f"{item.ram_gb:g} GB RAM")
    if item.storage_gb is not None:
        parts.append(f"{item.storage_gb:g} GB storage")
    parts.append(f"price {item.price_inr:,.0f} INR")
    if item.rating is not None:
        parts.append(f"rated {item.rating:.1f}")
    if item.discount_pct:
        parts.append(f"{item.discount_pct:.0f}% off")
    return ", ".join(parts)


@dataclass
class CrossEncoderScorer:
    """A loaded cross-encoder. ``score`` is CPU-bound: call it through a worker thread."""

    name: str
    path: Path
    model: Any
    batch_size: int
    max_length: int

    @classmethod
    def load(cls, name: str, path: Path, *, max_length: int, batch_size: int) -> CrossEncoderScorer:
        import torch
        from sentence_transformers import CrossEncoder

        model = CrossEncoder(str(path), device="cpu", max_length=max_length, local_files_only=True,
                             num_labels=1, activation_fn=torch.nn.Sigmoid())
        return cls(name=name, path=path, model=model, batch_size=batch_size, max_length=max_length)

    def score(self, query: str, items: Sequence[Item]) -> list[float]:
        if not items:
            return []
        pairs = [(query, item_text(item)) for item in items]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False,
                                    convert_to_numpy=True)
        return [float(s) for s in scores.reshape(-1)]


def load_configured(name: str | None, *, max_length: int, batch_size: int) -> CrossEncoderScorer | None:
    path = resolve_model_path(name)
    if path is None or name is None:
        return None
    return CrossEncoderScorer.load(name, path, max_length=max_length, batch_size=batch_size)
