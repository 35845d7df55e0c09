"""pickwise-client against the real gateway of the test stack: every public operation answers its typed
model, and a refusal comes back as the typed error naming the field."""

from __future__ import annotations

import uuid

import pytest

from pickwise_client import AsyncClient, Client, InvalidRequest, NotFound, Unauthorized

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pickwise(stack, api_key):
    with Client(stack.url("gateway"), api_key=api_key, timeout_s=30) as client:
        yield client


def test_search_item_similar_popular_round_trip(pickwise: Client) -> None:
    found = pickwise.search("samsung phone with 8gb ram under 20000", k=5, user_id="client-e2e-1")
    assert found.items and found.parsed.price_max_inr == 20000
    top = found.items[0]
    assert pickwise.item(top.item_id).item_id == top.item_id
    similar = pickwise.similar(top.item_id, k=3)
    assert similar.item_id == top.item_id and 1 <= len(similar.candidates) <= 3
    assert 1 <= len(pickwise.popular(k=4).candidates) <= 4


def test_click_then_the_feed_is_personal(pickwise: Client) -> None:
    user = f"client-e2e-{uuid.uuid4().hex[:8]}"
    top = pickwise.recommendations("oneplus phone", k=3, user_id=user, generate=False).items[0]
    accepted = pickwise.click(user, top.item_id, position=0, source="search")
    batch = pickwise.events_batch([{"type": "view", "user_id": user, "item_id": top.item_id},
                                   {"type": "no-such-type", "user_id": user, "item_id": top.item_id}])
    assert accepted.status == "accepted"
    assert (batch.accepted, batch.rejected) == (1, 1) and batch.results[1].status == "invalid"
    assert pickwise.feed(user, k=5).user_id == user


def test_invalid_k_is_invalid_request_naming_the_field(pickwise: Client) -> None:
    with pytest.raises(InvalidRequest) as caught:
        pickwise.search("phone", k=500)
    assert caught.value.status_code == 422
    assert "query.k" in caught.value.field_names
    assert caught.value.request_id


def test_unknown_item_is_not_found(pickwise: Client) -> None:
    with pytest.raises(NotFound):
        pickwise.item("no-such-item-xyz")


def test_wrong_api_key_is_unauthorized(stack) -> None:
    with Client(stack.url("gateway"), api_key="not-a-key", timeout_s=30) as client, pytest.raises(Unauthorized):
        client.popular()


async def test_async_client_answers_the_same_model(stack, api_key) -> None:
    async with AsyncClient(stack.url("gateway"), api_key=api_key, timeout_s=30) as client:
        found = await client.search("iphone 128gb", k=3)
    assert found.items and all(i.rank >= 1 for i in found.items)
