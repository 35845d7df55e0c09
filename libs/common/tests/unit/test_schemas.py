"""Edge validation of the shared schemas."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from pickwise_common.schemas import ClickIn, Constraints, EventIn, InteractionEvent, RetrieveRequest

pytestmark = pytest.mark.unit


def test_event_rejects_unknown_type_and_fields() -> None:
    with pytest.raises(ValidationError) as info:
        EventIn.model_validate({"type": "like", "user_id": "u", "item_id": "i", "colour": "red"})
    locs = {e["loc"][0] for e in info.value.errors()}
    assert locs == {"type", "colour"}


def test_event_rejects_long_or_empty_ids_and_negative_position() -> None:
    with pytest.raises(ValidationError) as info:
        EventIn.model_validate({"type": "click", "user_id": "u" * 129, "item_id": "", "position": -1})
    assert {e["loc"][0] for e in info.value.errors()} == {"user_id", "item_id", "position"}


def test_event_rejects_ts_far_in_the_future() -> None:
    future = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(ValidationError, match="future"):
        ClickIn(user_id="u", item_id="fm-00001", ts=future)


def test_interaction_event_gets_an_id_and_a_timestamp() -> None:
    event = InteractionEvent.from_input(ClickIn(user_id="u", item_id="fm-00001").as_event())
    assert event.type.value == "click"
    assert event.event_id.version == 4
    assert abs((datetime.now(UTC) - event.ts).total_seconds()) < 5


def test_blank_query_is_rejected() -> None:
    with pytest.raises(ValidationError, match="blank"):
        RetrieveRequest(query="   ")


def test_impossible_price_range_is_detected() -> None:
    assert Constraints(price_min_inr=20000, price_max_inr=10000).impossible
    assert not Constraints(price_min_inr=10000, price_max_inr=20000).impossible


def test_rerank_and_generate_take_the_retrievers_parsed_query_or_plain_constraints() -> None:
    """The gateway forwards what the retriever understood (with corrections and relaxed constraints) or
    plain constraints; neither may be refused by the strict request models."""
    from pickwise_common.schemas import Constraints, GenerateRequest, ParsedQuery, RerankRequest

    parsed = {"brands": ["Samsung"], "corrections": [{"from": "smasung", "to": "samsung"}],
              "relaxed": ["price_max_inr"]}
    rerank = RerankRequest(query="smasung phone", candidates=[], parsed=parsed)
    assert isinstance(rerank.parsed, ParsedQuery) and rerank.parsed.relaxed == ["price_max_inr"]
    generate = GenerateRequest(query="samsung phone", items=[], parsed=Constraints(brands=["Samsung"]))
    assert generate.parsed is not None and generate.parsed.brands == ["Samsung"]
