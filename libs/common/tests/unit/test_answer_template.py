"""The offline grounded answer shared by the generator and the gateway."""

import pytest

from pickwise_common.answer_template import inr, template_answer
from pickwise_common.schemas import Constraints, Item

pytestmark = pytest.mark.unit


def make_item(item_id: str, *, brand: str = "Samsung", price: float = 12_999, rating: float | None = 4.3) -> Item:
    return Item(item_id=item_id, title=f"{brand} Galaxy {item_id} (6 GB RAM, 128 GB)", brand=brand,
                model=f"Galaxy {item_id}", ram_gb=6, storage_gb=128, price_inr=price,
                original_price_inr=price * 1.2, discount_pct=16.7, rating=rating, price_band="mid",
                group_id=f"g-{item_id}")


@pytest.mark.parametrize(("amount", "text"), [(999, "₹999"), (18999, "₹18,999"), (123456, "₹1,23,456"),
                                              (12345678, "₹1,23,45,678")])
def test_inr_uses_indian_grouping(amount: float, text: str) -> None:
    assert inr(amount) == text


def test_template_cites_only_given_items_and_states_constraints() -> None:
    items = [make_item("a", price=14_000), make_item("b", brand="Apple", price=18_000), make_item("c"),
             make_item("d")]
    summary, picks = template_answer("samsung under 15k", items, Constraints(brands=["Samsung"],
                                                                             price_max_inr=15_000))
    assert [p.item_id for p in picks] == ["a", "b", "c"]
    assert "Samsung" in summary and "under ₹15,000" in summary and "Found 4 products" in summary
    assert "meets every stated requirement" in picks[0].why
    assert picks[0].why.startswith("₹14,000") and items[0].title not in picks[0].why  # the name is shown beside it
    assert "meets 0 of 2 stated requirements" in picks[1].why


def test_template_without_items_says_nothing_matched() -> None:
    summary, picks = template_answer("unicorn phone", [], Constraints(price_max_inr=100))
    assert picks == [] and "No products" in summary
