"""The offline grounded answer shared by the generator and the gateway."""

import pytest

from pickwise_common.answer_template import inr, money, template_answer
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


def retail_item(item_id: str, price: float) -> Item:
    return Item(item_id=item_id, catalog="retail", title=f"HEART T-LIGHT HOLDER {item_id}", price=price,
                currency="GBP", category="holder")


@pytest.mark.parametrize(("amount", "currency", "text"), [(2.55, "GBP", "£2.55"), (1234.5, "GBP", "£1,234.50"),
                                                           (18999, "INR", "₹18,999"), (3.0, "SEK", "3.00 SEK")])
def test_money_writes_the_catalog_currency(amount: float, currency: str, text: str) -> None:
    assert money(amount, currency) == text


def test_template_states_gbp_prices_of_a_gbp_catalog() -> None:
    summary, picks = template_answer("heart holder", [retail_item("or-85123A", 2.55), retail_item("or-22423", 12.75)],
                                     Constraints(price_max_inr=15), "GBP")
    assert "at £2.55" in summary and "from £2.55 to £12.75" in summary and "under £15.00" in summary
    assert "₹" not in summary
    assert picks[0].why.startswith("£2.55")
