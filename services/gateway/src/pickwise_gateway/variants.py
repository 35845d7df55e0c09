"""A/B variant assignment: a stable hash of the shopper (user id, else session id, else request id)
puts them in variant B with probability ``ab_split``; the variants differ in how retrieval fuses BM25
and dense scores (A: weighted min-max fusion, B: reciprocal rank fusion, by default)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pickwise_gateway.config import Fusion, GatewaySettings

VARIANTS = ("A", "B")


@dataclass(frozen=True)
class Variant:
    name: str
    fusion: Fusion
    alpha: float


def bucket(subject: str) -> float:
    """A number in [0, 1) that depends only on ``subject`` (first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(subject.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(subject: str, split_b: float) -> str:
    return "B" if bucket(subject) < split_b else "A"


def variant_for(settings: GatewaySettings, *, user_id: str | None, session_id: str | None,
                request_id: str) -> Variant:
    subject = (f"user:{user_id}" if user_id else f"session:{session_id}" if session_id
               else f"request:{request_id}")
    name = assign(subject, settings.ab_split)
    if name == "B":
        return Variant("B", settings.ab_b_fusion, settings.ab_b_alpha)
    return Variant("A", settings.ab_a_fusion, settings.ab_a_alpha)
