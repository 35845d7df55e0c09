"""Answers in the gateway: the offline grounded template (shared with the generator) used when the
generator cannot answer, and the citation check that drops any pick naming an item not in the results."""

from __future__ import annotations

from pickwise_common import answer_template
from pickwise_common.schemas import Answer, Constraints, Item

TEMPLATE_PROVIDER = "gateway-template"


def template_answer(query: str, items: list[Item], parsed: Constraints | None, *, reason: str,
                    currency: str | None = None) -> Answer:
    summary, picks = answer_template.template_answer(query, items, parsed, currency)
    return Answer(summary=summary, picks=picks, provider=TEMPLATE_PROVIDER, fallback_reasons=[reason])


def keep_cited(answer: Answer, item_ids: list[str]) -> tuple[Answer, list[str]]:
    """The answer with only picks citing returned items, and the ids it dropped."""
    allowed = set(item_ids)
    kept = [p for p in answer.picks if p.item_id in allowed]
    dropped = [p.item_id for p in answer.picks if p.item_id not in allowed]
    if not dropped:
        return answer, []
    return answer.model_copy(update={"picks": kept}), dropped
