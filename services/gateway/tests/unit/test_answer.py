import pytest

from pickwise_common.schemas import Answer, Constraints, Item, Pick
from pickwise_gateway.answer import keep_cited, template_answer

pytestmark = pytest.mark.unit


@pytest.fixture
def phone(fakes) -> Item:
    return Item.model_validate(fakes.item("x1", price_inr=18999, discount_pct=24, rating=4.2))


def test_template_cites_only_given_items(phone: Item, fakes) -> None:
    other = Item.model_validate(fakes.item("x2"))
    answer = template_answer("samsung under 20k", [phone, other], Constraints(price_max_inr=20000),
                             reason="generator_unavailable")
    assert [p.item_id for p in answer.picks] == ["x1", "x2"]
    assert "under ₹20,000" in answer.summary
    assert answer.provider == "gateway-template"
    assert answer.fallback_reasons == ["generator_unavailable"]


def test_keep_cited_drops_unknown_ids() -> None:
    answer = Answer(summary="s", provider="groq", picks=[Pick(item_id="a", why="1"), Pick(item_id="zz", why="2")])
    kept, dropped = keep_cited(answer, ["a", "b"])
    assert [p.item_id for p in kept.picks] == ["a"]
    assert dropped == ["zz"]
