"""The LLM prompt: a product-expert persona that must answer in one strict JSON shape, grounded in the
items it is given (and nothing else)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pickwise_common.schemas import Constraints, Item, Turn

SYSTEM_PROMPT = """You are Pickwise, a knowledgeable and honest mobile-phone shopping expert.
You help a shopper choose among the products listed in the user message, and ONLY those products.
Rules:
- Recommend at most 3 products, chosen from the listed items, best first.
- Cite products only by their exact "item_id" from the list. Never invent products, prices or specs.
- Ground every statement in the listed facts (price in INR, RAM, storage, rating, discount) and in the
  shopper's stated constraints; if no listed product fits a constraint, say so plainly.
- Be concise: the summary is at most 3 sentences; each "why" is one sentence.
Answer with a single JSON object and nothing else, exactly in this shape:
{"summary": "<string>", "picks": [{"item_id": "<an item_id from the list>", "why": "<string>"}]}"""

MAX_HISTORY_TURNS = 3


def item_facts(item: Item) -> dict[str, Any]:
    facts: dict[str, Any] = {"item_id": item.item_id, "title": item.title, "brand": item.brand,
                             "price_inr": round(item.price_inr)}
    for key in ("ram_gb", "storage_gb", "rating", "discount_pct", "color"):
        value = getattr(item, key)
        if value is not None:
            facts[key] = value
    return facts


def constraint_facts(parsed: Constraints | None) -> dict[str, Any]:
    if parsed is None:
        return {}
    return parsed.model_dump(exclude_defaults=True)


def build_messages(query: str, items: Sequence[Item], parsed: Constraints | None,
                   history: Sequence[Turn]) -> list[dict[str, str]]:
    payload: dict[str, Any] = {
        "shopper_query": query,
        "constraints": constraint_facts(parsed),
        "items": [item_facts(i) for i in items],
    }
    if history:
        payload["previous_turns"] = [{"query": t.query, "answer": t.answer} for t in history[-MAX_HISTORY_TURNS:]]
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(payload, ensure_ascii=False)}]
