"""Fixtures of the retriever tests: a tiny CF model saved the way ``train-cf`` saves one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pickwise_common import cf


def tiny_cf_model(version: str) -> cf.CfModel:
    """Three retail items, A and B alike, C apart."""
    return cf.CfModel(
        version=version, catalog="retail", trained_at="2026-12-01T00:00:00Z",
        window={"from": "2010-12-01", "until": "2011-10-31"}, item_ids=["or-A", "or-B", "or-C"],
        item_factors=np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32), regularization=0.1,
        alpha=1.0, similar={"or-A": [("or-B", 0.99)]}, bought_together={},
        popularity=[("or-C", 3.0), ("or-B", 2.0), ("or-A", 1.0)])


@pytest.fixture
def save_tiny_cf_model() -> Callable[[str, Path], Path]:
    """``save(version, folder)``: a tiny CF model of that ``cf-v…`` version saved under ``folder``; its directory."""

    def save(version: str, folder: Path) -> Path:
        return cf.save(tiny_cf_model(version), folder)

    return save
