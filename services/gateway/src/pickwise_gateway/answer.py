"""Answers in the gateway: the offline grounded template used when the generator cannot answer, and
the citation check that drops any pick naming an item not in the result list."""

from __future__ import annotations

from pickwise_common.schemas import Answer, Constraints, Item, Pick

TEMPLATE_PROVIDER = "gateway-template"
TEMPLATE_PICKS = 3


def inr(amount: float) -> str:
    """₹ with Indian digit grouping: 123456 -> '₹1,23,456'."""
    whole = int(round(amount))
    digits = str(abs(whole))
    if len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        digits = ",".join(groups) + "," + tail
    return ("-" if whole < 0 else "") + "₹" + digits


def _gb(value: float | None) -> str | None:
    if value is None:
        return None
    if value >= 1024 and value % 1024 == 0:
        return f"{int(value // 1024)} TB"
    return f"{value:g} GB"


def describe(item: Item) -> str:
    """'8 GB RAM, 128 GB storage, ₹18,999 (24% off), rated 4.2'."""
    parts = []
    if (ram := _gb(item.ram_gb)) is not None:
        parts.append(f"{ram} RAM")
    if (storage := _gb(item.storage_gb)) is not None:
        parts.append(f"{storage} storage")
    price = inr(item.price_inr)
    if item.discount_pct:
        price += f" ({item.discount_pct:g}% off)"
    parts.append(price)
    if item.rating is not None:
        parts.append(f"rated {item.rating:g}")
    return ", ".join(parts)


def _display_name(item: Item) -> str:
    return f"{item.brand.title()} {item.model.title()}" if item.model else item.title


def template_answer(query: str, items: list[Item], parsed: Constraints | None, *,
                    reason: str) -> Answer:
    """A short answer built only from the given items' facts (nothing else is claimed)."""
    if not items:
        return Answer(summary=f"Nothing in the catalog matches \u201c{query}\u201d; try fewer constraints.",
                      picks=[], provider=TEMPLATE_PROVIDER, fallback_reasons=[reason])
    picks = [Pick(item_id=item.item_id, why=describe(item)) for item in items[:TEMPLATE_PICKS]]
    best = items[0]
    asked = []
    if parsed is not None:
        if parsed.price_max_inr is not None:
            asked.append(f"under {inr(parsed.price_max_inr)}")
        if parsed.ram_gb_min is not None:
            asked.append(f"at least {_gb(parsed.ram_gb_min)} RAM")
        if parsed.storage_gb_min is not None:
            asked.append(f"at least {_gb(parsed.storage_gb_min)} storage")
    fit = f" for {', '.join(asked)}" if asked else ""
    summary = (f"Top pick{fit}: {_display_name(best)} ({describe(best)}). "
               f"{len(items)} result{'s' if len(items) != 1 else ''} in total.")
    return Answer(summary=summary, picks=picks, provider=TEMPLATE_PROVIDER, fallback_reasons=[reason])


def keep_cited(answer: Answer, item_ids: list[str]) -> tuple[Answer, list[str]]:
    """The answer with only picks citing returned items, and the ids it dropped."""
    allowed = set(item_ids)
    kept = [p for p in answer.picks if p.item_id in allowed]
    dropped = [p.item_id for p in answer.picks if p.item_id not in allowed]
    if not dropped:
        return answer, []
    return answer.model_copy(update={"picks": kept}), dropped
