"""The LLM prompt: a product-expert persona that must answer in one strict JSON shape, grounded in the
items it is given (and nothing else)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pickwise_common.answer_template import money, price_of
from pickwise_common.catalogs import DEFAULT_CATALOG, catalog_spec
from pickwise_common.schemas import Constraints, Item, Turn

SYSTEM_PROMPT_TEMPLATE = """You are Pickwise, a knowledgeable and honest {expertise} shopping expert.
You help a shopper choose among the products listed in the user message, and ONLY those products.
Rules:
- Recommend at most 3 products, chosen from the listed items, best first.
- Cite products only by their exact "item_id" from the list. Never invent products, prices or specs.
- Ground every statement in the listed facts ({facts}) and in the
  shopper's stated constraints; if no listed product fits a constraint, say so plainly.
- Quote prices as given, in {currency} (write them like {example}).
- Be concise: the summary is at most 3 sentences; each "why" is one sentence.
Answer with a single JSON object and nothing else, exactly in this shape:
{{"summary": "<string>", "picks": [{{"item_id": "<an item_id from the list>", "why": "<string>"}}]}}"""

# what the shopper is choosing among, and which facts each item carries, per catalog
EXPERTISE = {"flipkart": ("mobile-phone", "price, RAM, storage, rating, discount"),
             "retail": ("gift and homeware", "price, category")}


def system_prompt(catalog: str = DEFAULT_CATALOG) -> str:
    """The system prompt of a catalog: its kind of products and its currency (₹ for INR, £ for GBP)."""
    currency = catalog_spec(catalog).currency
    expertise, facts = EXPERTISE.get(catalog, ("product", "price, category, rating"))
    return SYSTEM_PROMPT_TEMPLATE.format(expertise=expertise, facts=facts, currency=currency,
                                         example=money(1234.5 if currency != "INR" else 12345, currency))


SYSTEM_PROMPT = system_prompt(DEFAULT_CATALOG)

MAX_HISTORY_TURNS = 3


def item_facts(item: Item) -> dict[str, Any]:
    """The facts the model may cite: the price as the shopper reads it (``price`` in the item's currency,
    also formatted), and ``price_inr`` for the INR catalog as before."""
    facts: dict[str, Any] = {"item_id": item.item_id, "title": item.title}
    if item.brand:
        facts["brand"] = item.brand
    if item.currency == "INR":
        facts["price_inr"] = round(item.price_inr if item.price_inr is not None else (item.price or 0.0))
    else:
        facts["price"] = round(item.price or 0.0, 2)
        facts["currency"] = item.currency
    facts["price_text"] = price_of(item)
    if item.category and item.category != "mobile":
        facts["category"] = item.category
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
                   history: Sequence[Turn], catalog: str = DEFAULT_CATALOG) -> list[dict[str, str]]:
    payload: dict[str, Any] = {
        "shopper_query": query,
        "constraints": constraint_facts(parsed),
        "items": [item_facts(i) for i in items],
    }
    if history:
        payload["previous_turns"] = [{"query": t.query, "answer": t.answer} for t in history[-MAX_HISTORY_TURNS:]]
    return [{"role": "system", "content": system_prompt(catalog)},
            {"role": "user", "content": json.dumps(payload, ensure_ascii=False)}]
