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
