import pytest

from pickwise_gateway.config import GatewaySettings
from pickwise_gateway.variants import assign, bucket, variant_for

pytestmark = pytest.mark.unit


def test_same_user_always_gets_the_same_variant() -> None:
    settings = GatewaySettings(ab_split=0.5)
    first = variant_for(settings, user_id="u-7", session_id="s1", request_id="r1")
    again = variant_for(settings, user_id="u-7", session_id="s2", request_id="r2")
    assert first == again


def test_split_is_close_to_the_configured_share() -> None:
    share_b = sum(assign(f"user:{i}", 0.2) == "B" for i in range(5000)) / 5000
    assert 0.17 < share_b < 0.23


@pytest.mark.parametrize(("split", "expected"), [(0.0, "A"), (1.0, "B")])
def test_split_extremes_put_everyone_in_one_variant(split: float, expected: str) -> None:
    assert {assign(f"user:{i}", split) for i in range(200)} == {expected}


def test_variants_differ_in_fusion() -> None:
    settings = GatewaySettings(ab_split=0.5)
    names = {}
    for i in range(50):
        v = variant_for(settings, user_id=f"u{i}", session_id=None, request_id="r")
        names[v.name] = v
    assert names["A"].fusion == "weighted" and names["B"].fusion == "rrf"


def test_session_id_is_used_when_there_is_no_user() -> None:
    settings = GatewaySettings(ab_split=0.5)
    variants = {variant_for(settings, user_id=None, session_id="s-1", request_id=f"r{i}").name for i in range(20)}
    assert len(variants) == 1


def test_bucket_is_in_unit_interval() -> None:
    assert all(0 <= bucket(str(i)) < 1 for i in range(1000))


# ---------------------------------------------------------------- experiments (decision 1005)

THREE_WAY = {"name": "fusion-3", "variants": [
    {"name": "A", "share": 0.5, "fusion": "weighted", "alpha": 0.3},
    {"name": "B", "share": 0.3, "fusion": "rrf", "alpha": 0.3},
    {"name": "C", "share": 0.2, "fusion": "weighted", "alpha": 0.6, "ranker_alias": "challenger"}]}


def _names(settings: GatewaySettings, n: int = 20_000) -> list[str]:
    return [variant_for(settings, user_id=f"u{i}", session_id=None, request_id="r").name for i in range(n)]


def test_configured_variants_get_their_shares() -> None:
    names = _names(GatewaySettings(experiment=THREE_WAY, challenger_share=0.0))
    for name, share in (("A", 0.5), ("B", 0.3), ("C", 0.2)):
        assert abs(names.count(name) / len(names) - share) < 0.015


def test_challenger_share_is_independent_of_the_experiment_buckets() -> None:
    names = _names(GatewaySettings(ab_split=0.5, challenger_share=0.1))
    assert abs(names.count("challenger") / len(names) - 0.1) < 0.01
    rest = [n for n in names if n != "challenger"]
    assert abs(rest.count("B") / len(rest) - 0.5) < 0.015


def test_challenger_uses_variant_a_fusion_and_the_challenger_ranker() -> None:
    settings = GatewaySettings(experiment=THREE_WAY, challenger_share=1.0)
    variant = variant_for(settings, user_id="u1", session_id=None, request_id="r")
    assert (variant.name, variant.fusion, variant.alpha, variant.ranker_alias, variant.base) == (
        "challenger", "weighted", 0.3, "challenger", "A")
    assert variant.experiment == "fusion-3"


def test_default_experiment_keeps_the_ab_split_assignment() -> None:
    settings = GatewaySettings(ab_split=0.3, challenger_share=0.0)
    for i in range(2000):
        assert variant_for(settings, user_id=f"u{i}", session_id=None, request_id="r").name == assign(f"user:u{i}", 0.3)


def test_default_variants_are_scored_by_the_champion() -> None:
    settings = GatewaySettings(challenger_share=0.0)
    assert {variant_for(settings, user_id=f"u{i}", session_id=None, request_id="r").ranker_alias
            for i in range(200)} == {"champion"}


def test_interleaving_takes_its_share_first() -> None:
    settings = GatewaySettings(interleaving=True, interleaving_share=0.5, challenger_share=0.1)
    names = _names(settings, 10_000)
    assert abs(names.count("interleaved") / len(names) - 0.5) < 0.02
    assert variant_for(GatewaySettings(interleaving=True, interleaving_share=1.0), user_id="u", session_id=None,
                       request_id="r").interleaved


def test_experiment_from_the_environment_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    monkeypatch.setenv("PICKWISE_EXPERIMENT", json.dumps(THREE_WAY))
    assert [v.name for v in GatewaySettings().experiment.variants] == ["A", "B", "C"]


@pytest.mark.parametrize("bad", [
    {"name": "x", "variants": [{"name": "A", "share": 0.5}]},
    {"name": "x", "variants": [{"name": "A", "share": 0.5}, {"name": "A", "share": 0.5}]},
    {"name": "x", "variants": [{"name": "challenger", "share": 1.0}]},
    {"name": "x", "variants": [{"name": "A", "share": 1.0, "ranker_alias": "latest"}]},
])
def test_an_invalid_experiment_is_refused(bad: dict) -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        GatewaySettings(experiment=bad)
