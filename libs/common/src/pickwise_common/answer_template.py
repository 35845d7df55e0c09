"""The offline grounded answer: a short summary and picks built only from the given items and the parsed
constraints, nothing else claimed. The generator's last provider, and the gateway's answer when the
generator cannot be reached."""

from __future__ import annotations

from collections.abc import Sequence

from pickwise_common.constraints import feature_verdicts
from pickwise_common.schemas import Constraints, Item, Pick

MAX_PICKS = 3


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


CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


def money(amount: float, currency: str = "INR") -> str:
    """A price in its catalog's currency: INR as whole rupees with Indian grouping (``₹1,23,456``), GBP and
    the other symbol currencies with two decimals (``£2.55``, ``£1,234.50``), any other code after the number."""
    if currency == "INR":
        return inr(amount)
    symbol = CURRENCY_SYMBOLS.get(currency)
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def describe_constraints(parsed: Constraints | None, currency: str = "INR") -> list[str]:
    """The constraints in words; prices (the ``*_inr`` fields) are read in the catalog's ``currency``."""
    if parsed is None:
        return []
    parts: list[str] = []
    if parsed.brands:
        parts.append(" or ".join(parsed.brands))
    if parsed.price_min_inr is not None and parsed.price_max_inr is not None:
        parts.append(f"between {money(parsed.price_min_inr, currency)} and {money(parsed.price_max_inr, currency)}")
    elif parsed.price_max_inr is not None:
        parts.append(f"under {money(parsed.price_max_inr, currency)}")
    elif parsed.price_min_inr is not None:
        parts.append(f"above {money(parsed.price_min_inr, currency)}")
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


def price_of(item: Item) -> str:
    return money(item.price if item.price is not None else (item.price_inr or 0.0), item.currency)


def _why(item: Item, parsed: Constraints | None) -> str:
    facts = [price_of(item)]
    if item.ram_gb is not None and item.storage_gb is not None:
        facts.append(f"{item.ram_gb:g} GB RAM / {item.storage_gb:g} GB storage")
    if item.rating is not None:
        facts.append(f"rated {item.rating:.1f}")
    if item.discount_pct:
        facts.append(f"{item.discount_pct:.0f}% off")
    sentence = ", ".join(facts)
    if parsed is not None:
        dims = ("brand", "price_min", "price_max", "ram", "storage", "rating", "discount", "price_band")
        every = feature_verdicts(item, parsed)
        verdicts = [every[d] for d in dims]
        asked = [v for v in verdicts if v is not None]
        if asked and all(asked):
            sentence += "; meets every stated requirement"
        elif asked:
            sentence += f"; meets {sum(asked)} of {len(asked)} stated requirements"
    return sentence + "."


def template_answer(query: str, items: Sequence[Item], parsed: Constraints | None,
                    currency: str | None = None) -> tuple[str, list[Pick]]:
    """A grounded answer without an LLM: built only from the given items and the parsed constraints. Prices
    are shown in the items' currency (the constraints in ``currency``, default: the first item's, else INR)."""
    currency = currency or (items[0].currency if items else "INR")
    wanted = describe_constraints(parsed, currency)
    if not items:
        ask = f" ({', '.join(wanted)})" if wanted else ""
        return f"No products in the catalog match your search{ask}. Try relaxing a requirement.", []
    top = list(items[:MAX_PICKS])
    scope = f" matching {', '.join(wanted)}" if wanted else f" for \u201c{query.strip()}\u201d"
    lead = top[0]
    summary = (f"Found {len(items)} product{'s' if len(items) != 1 else ''}{scope}. "
               f"Top pick: {lead.title} at {price_of(lead)}"
               + (f", rated {lead.rating:.1f}" if lead.rating is not None else "") + ".")
    priced = [i for i in items if i.price is not None and i.currency == lead.currency]
    if len(priced) > 1:
        cheapest = min(priced, key=lambda i: i.price or 0.0)
        dearest = max(priced, key=lambda i: i.price or 0.0)
        summary += f" Prices range from {price_of(cheapest)} to {price_of(dearest)}."
    return summary, [Pick(item_id=i.item_id, why=_why(i, parsed)) for i in top]
