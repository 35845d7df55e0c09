"""Validating an LLM's output against the strict answer shape, and the offline grounded template."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pickwise_common.ranking_features import constraint_holds
from pickwise_common.schemas import Constraints, Item, Pick

MAX_PICKS = 3
MAX_SUMMARY_CHARS = 1200
MAX_WHY_CHARS = 400
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


class InvalidOutput(ValueError):
    """The model's text is not the JSON shape we asked for."""


def parse_answer(text: str, items: Sequence[Item]) -> tuple[str, list[Pick], int]:
    """``(summary, picks, dropped)``: the picks cite only given items (others are dropped and counted)."""
    cleaned = _FENCE.sub("", text.strip())
    try:
        data = json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"not JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise InvalidOutput("not a JSON object")
    summary = data.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise InvalidOutput("'summary' is missing or not a non-empty string")
    raw_picks = data.get("picks", [])
    if not isinstance(raw_picks, list):
        raise InvalidOutput("'picks' is not a list")
    known = {item.item_id for item in items}
    picks: list[Pick] = []
    dropped = 0
    for raw in raw_picks:
        if not isinstance(raw, dict) or not isinstance(raw.get("item_id"), str):
            raise InvalidOutput("a pick is not an object with a string 'item_id'")
        item_id, why = raw["item_id"], raw.get("why", "")
        if item_id not in known or any(p.item_id == item_id for p in picks):
            dropped += 1
            continue
        picks.append(Pick(item_id=item_id, why=str(why).strip()[:MAX_WHY_CHARS]))
    return summary.strip()[:MAX_SUMMARY_CHARS], picks[:MAX_PICKS], dropped


def _inr(value: float) -> str:
    return f"₹{value:,.0f}"


def describe_constraints(parsed: Constraints | None) -> list[str]:
    if parsed is None:
        return []
    parts: list[str] = []
    if parsed.brands:
        parts.append(" or ".join(parsed.brands))
    if parsed.price_min_inr is not None and parsed.price_max_inr is not None:
        parts.append(f"between {_inr(parsed.price_min_inr)} and {_inr(parsed.price_max_inr)}")
    elif parsed.price_max_inr is not None:
        parts.append(f"under {_inr(parsed.price_max_inr)}")
    elif parsed.price_min_inr is not None:
        parts.append(f"above {_inr(parsed.price_min_inr)}")
    if parsed.ram_gb_min is not None:
        parts.append(f"at least {parsed.ram_gb_min:g} GB RAM")
    if parsed.storage_gb_min is not None:
        parts.append(f"at least {parsed.storage_gb_min:g} GB storage")
    if parsed.rating_min is not None:
        parts.append(f"rated {parsed.rating_min:g}+")
    if parsed.discount_pct_min is not None:
        parts.append(f"{parsed.discount_pct_min:g}%+ off")
    if parsed.price_bands:
        parts.append("/".join(parsed.price_bands) + " price band")
    if parsed.feature_phone:
        parts.append("feature phones")
    return parts


def _why(item: Item, parsed: Constraints | None) -> str:
    facts = [_inr(item.price_inr)]
    if item.ram_gb is not None and item.storage_gb is not None:
        facts.append(f"{item.ram_gb:g} GB RAM / {item.storage_gb:g} GB storage")
    if item.rating is not None:
        facts.append(f"rated {item.rating:.1f}")
    if item.discount_pct:
        facts.append(f"{item.discount_pct:.0f}% off")
    sentence = f"{item.title}: " + ", ".join(facts)
    if parsed is not None:
        dims = ("brand", "price_min", "price_max", "ram", "storage", "rating", "discount", "price_band")
        verdicts = [constraint_holds(d, item, parsed) for d in dims]
        asked = [v for v in verdicts if v is not None]
        if asked and all(asked):
            sentence += "; meets every stated requirement"
        elif asked:
            sentence += f"; meets {sum(asked)} of {len(asked)} stated requirements"
    return sentence + "."


def template_answer(query: str, items: Sequence[Item], parsed: Constraints | None) -> tuple[str, list[Pick]]:
    """A grounded answer without an LLM: built only from the given items and the parsed constraints."""
    wanted = describe_constraints(parsed)
    if not items:
        ask = f" ({', '.join(wanted)})" if wanted else ""
        return f"No products in the catalog match your search{ask}. Try relaxing a requirement.", []
    top = list(items[:MAX_PICKS])
    scope = f" matching {', '.join(wanted)}" if wanted else f" for \u201c{query.strip()}\u201d"
    lead = top[0]
    summary = (f"Found {len(items)} product{'s' if len(items) != 1 else ''}{scope}. "
               f"Top pick: {lead.title} at {_inr(lead.price_inr)}"
               + (f", rated {lead.rating:.1f}" if lead.rating is not None else "") + ".")
    prices = [i.price_inr for i in items]
    if len(items) > 1:
        summary += f" Prices range from {_inr(min(prices))} to {_inr(max(prices))}."
    return summary, [Pick(item_id=i.item_id, why=_why(i, parsed)) for i in top]
