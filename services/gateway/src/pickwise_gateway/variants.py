"""Experiment variant assignment (decision 1005): a stable hash of the shopper (user id, else session id, else
request id) picks one of the experiment's variants by its share; independently of that, ``challenger_share``
of shoppers get the "challenger" variant (variant A's fusion, scored by the challenger ranker) and, with
interleaving on, ``interleaving_share`` of shoppers get both rankers merged by team draft. Without
``PICKWISE_EXPERIMENT`` the experiment is today's A/B: A = weighted min-max fusion, B = reciprocal rank fusion,
B for ``ab_split`` of shoppers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pickwise_gateway.config import ExperimentSpec, Fusion, GatewaySettings, RankerAlias, VariantSpec

VARIANTS = ("A", "B")
CHALLENGER = "challenger"
INTERLEAVED = "interleaved"


@dataclass(frozen=True)
class Variant:
    name: str
    fusion: Fusion
    alpha: float
    ranker_alias: RankerAlias = "champion"
    experiment: str | None = None
    interleaved: bool = False
    base: str | None = None  # the experiment variant whose fusion a challenger/interleaved variant reuses


def bucket(subject: str) -> float:
    """A number in [0, 1) that depends only on ``subject`` (first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(subject.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(subject: str, split_b: float) -> str:
    return "B" if bucket(subject) < split_b else "A"


def experiment_of(settings: GatewaySettings) -> ExperimentSpec:
    """The configured experiment, else the A/B of the ab_* settings (B listed first: the walk in ``pick`` then
    gives every shopper the variant the plain A/B split gave them)."""
    if settings.experiment is not None:
        return settings.experiment
    return ExperimentSpec(name="ab", variants=[
        VariantSpec(name="B", share=settings.ab_split, fusion=settings.ab_b_fusion, alpha=settings.ab_b_alpha),
        VariantSpec(name="A", share=1.0 - settings.ab_split, fusion=settings.ab_a_fusion,
                    alpha=settings.ab_a_alpha)])


def pick(experiment: ExperimentSpec, point: float) -> VariantSpec:
    """The variant whose cumulative share interval holds ``point`` (in [0, 1))."""
    upto = 0.0
    for spec in experiment.variants:
        upto += spec.share
        if point < upto:
            return spec
    return next((v for v in reversed(experiment.variants) if v.share > 0), experiment.variants[-1])


def control_of(experiment: ExperimentSpec) -> VariantSpec:
    """The variant a challenger is compared with: the one named A, else the first."""
    return next((v for v in experiment.variants if v.name == "A"), experiment.variants[0])


def subject_of(*, user_id: str | None, session_id: str | None, request_id: str) -> str:
    return f"user:{user_id}" if user_id else f"session:{session_id}" if session_id else f"request:{request_id}"


def variant_for(settings: GatewaySettings, *, user_id: str | None, session_id: str | None,
                request_id: str) -> Variant:
    subject = subject_of(user_id=user_id, session_id=session_id, request_id=request_id)
    experiment = experiment_of(settings)
    if settings.interleaving and bucket(f"interleaving:{subject}") < settings.interleaving_share:
        control = control_of(experiment)
        return Variant(INTERLEAVED, control.fusion, control.alpha, "champion", experiment.name, interleaved=True,
                       base=control.name)
    if bucket(f"challenger:{subject}") < settings.challenger_share:
        control = control_of(experiment)
        return Variant(CHALLENGER, control.fusion, control.alpha, "challenger", experiment.name, base=control.name)
    spec = pick(experiment, bucket(subject))
    return Variant(spec.name, spec.fusion, spec.alpha, spec.ranker_alias, experiment.name)
