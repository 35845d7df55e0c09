"""Validation of the model's JSON, the prompt, and the streaming summary extractor."""

from __future__ import annotations

import json

import pytest

from pickwise_common.schemas import Constraints, GenerateRequest, Item, Turn
from pickwise_generator.answer import InvalidOutput, parse_answer
from pickwise_generator.generation import Generator, SummaryExtractor
from pickwise_generator.prompt import SYSTEM_PROMPT, build_messages

pytestmark = pytest.mark.unit


def test_valid_answer_keeps_given_ids_and_drops_others(make_item):
    items = [make_item("a"), make_item("b")]
    text = json.dumps({"summary": "Two picks.", "picks": [{"item_id": "b", "why": "cheap"},
                                                           {"item_id": "zzz", "why": "made up"},
                                                           {"item_id": "b", "why": "again"}]})
    summary, picks, dropped = parse_answer(text, items)
    assert summary == "Two picks." and [p.item_id for p in picks] == ["b"] and dropped == 2


def test_code_fenced_json_is_accepted(make_item):
    summary, picks, _ = parse_answer('```json\n{"summary": "ok", "picks": []}\n```', [make_item("a")])
    assert summary == "ok" and picks == []


@pytest.mark.parametrize("text", ["Here you go!", "[1, 2]", '{"picks": []}', '{"summary": "", "picks": []}',
                                  '{"summary": "s", "picks": "a"}', '{"summary": "s", "picks": [{"id": "a"}]}'])
def test_off_format_output_is_invalid(text, make_item):
    with pytest.raises(InvalidOutput):
        parse_answer(text, [make_item("a")])


def test_prompt_carries_items_constraints_and_recent_history(make_item):
    history = [Turn(query=f"q{i}", answer=f"a{i}") for i in range(5)]
    messages = build_messages("cheaper ones", [make_item("a")], Constraints(price_max_inr=9_000), history)
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    payload = json.loads(messages[1]["content"])
    assert payload["items"][0]["item_id"] == "a" and payload["constraints"] == {"price_max_inr": 9000.0}
    assert [t["query"] for t in payload["previous_turns"]] == ["q2", "q3", "q4"]


def test_summary_extractor_decodes_the_summary_as_it_streams():
    text = json.dumps({"summary": "Caf\u00e9 \"best\" pick \U0001F600 \u2014 done", "picks": []})
    extractor = SummaryExtractor()
    pieces = [extractor.feed(text[i:i + 3]) for i in range(0, len(text), 3)]
    assert "".join(pieces) == "Caf\u00e9 \"best\" pick \U0001F600 \u2014 done"
    assert all("\ud800" > ch or ch > "\udfff" for piece in pieces for ch in piece)


def test_summary_extractor_waits_for_the_summary_key():
    extractor = SummaryExtractor()
    assert extractor.feed('{"picks": [], "sum') == ""
    assert extractor.feed('mary": "hi') == "hi"
    assert extractor.feed('!"}') == "!"


def test_prompt_of_a_gbp_catalog_quotes_pounds():
    item = Item(item_id="or-85123A", catalog="retail", title="WHITE HANGING HEART T-LIGHT HOLDER", price=2.55,
                currency="GBP", category="holder")
    messages = build_messages("heart holder", [item], None, [], "retail")
    payload = json.loads(messages[1]["content"])
    assert "GBP" in messages[0]["content"] and "£" in messages[0]["content"]
    assert payload["items"][0] | {"title": ""} == {"item_id": "or-85123A", "title": "", "price": 2.55,
                                                   "currency": "GBP", "price_text": "£2.55", "category": "holder"}


def test_prompt_of_the_inr_catalog_keeps_price_inr(make_item):
    payload = json.loads(build_messages("phone", [make_item("a", price=12_999)], None, [])[1]["content"])
    assert payload["items"][0]["price_inr"] == 12_999 and payload["items"][0]["price_text"] == "₹12,999"
    assert "currency" not in payload["items"][0]


async def test_template_answer_of_a_gbp_catalog_uses_pounds():
    item = Item(item_id="or-85123A", catalog="retail", title="HEART HOLDER", price=2.55, currency="GBP")
    answer = await Generator([]).generate(GenerateRequest(query="heart", catalog="retail", items=[item]))
    assert "£2.55" in answer.summary and "₹" not in answer.summary
