"""Settings of a real gateway process: the per-key rate limit (429 + Retry-After) and the A/B split."""

import httpx
import pytest

pytestmark = pytest.mark.e2e

BURST = 4


@pytest.fixture(scope="module")
def limited_gateway(stack):
    """An extra gateway (the shared one is untouched) with a tiny limit and everyone in variant B. Its limits
    stay in process: through Redis it would share the key's window with the shared gateway, which the other
    tests keep busy (sharing through Redis is tested in services/gateway/tests/integration)."""
    proc, url = stack.start_extra("gateway", {"PICKWISE_RATE_LIMIT_PER_MINUTE": str(BURST),
                                              "PICKWISE_RATE_LIMIT_REDIS": "false", "PICKWISE_AB_SPLIT": "1"})
    try:
        yield url
    finally:
        proc.stop()


def test_split_one_puts_every_user_in_variant_b(limited_gateway, api_key) -> None:
    with httpx.Client(base_url=limited_gateway, headers={"X-API-Key": api_key}, timeout=15) as client:
        variants = [client.get("/v1/search", params={"q": "phone", "k": 1, "user_id": f"ab-{i}"}).json()["variant"]
                    for i in range(2)]
    assert variants == ["B", "B"]


def test_key_over_its_rate_gets_429_with_retry_after(limited_gateway, api_key) -> None:
    with httpx.Client(base_url=limited_gateway, headers={"X-API-Key": api_key}, timeout=15) as client:
        statuses = [client.get("/v1/search", params={"q": "phone", "k": 1}).status_code for _ in range(BURST + 1)]
        limited = client.get("/v1/search", params={"q": "phone", "k": 1})
        health = client.get("/healthz")
    assert 429 in statuses
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    assert health.status_code == 200
