"""Validating an LLM's output against the strict answer shape (the offline template lives in
``pickwise_common.answer_template``, shared with the gateway)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pickwise_common.schemas import Item, Pick

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
