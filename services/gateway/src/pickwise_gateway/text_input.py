"""Text hygiene of public input (decision 0754): every string of a query string or JSON body is NFKC-normalised,
and one holding a bidi control, a zero-width character or a C0/C1 control is refused naming its field; JSON
arrays are bounded. Pure functions; ``auth.PublicApiMiddleware`` applies them before any route runs."""

from __future__ import annotations

import unicodedata
from typing import Any

from pickwise_common.errors import InvalidInput

MAX_LIST_ITEMS = 500  # the largest list a public endpoint takes (POST /v1/events:batch)
MAX_DEPTH = 8

# bidi embeddings/overrides/isolates and marks, zero-width and invisible formatting characters
_FORBIDDEN = frozenset(
    [0x061C, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF, 0x180E]
    + list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A)))
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def forbidden_character(text: str) -> str | None:
    """The first character that has no place in a query or an id, as ``U+hhhh`` (hex); None when clean."""
    for char in text:
        code = ord(char)
        if code in _FORBIDDEN or ((code < 0x20 or 0x7F <= code <= 0x9F) and char not in _ALLOWED_CONTROLS):
            return f"U+{code:04X}"
    return None


def clean_text(text: str, field: str) -> str:
    """NFKC form of ``text``; InvalidInput naming ``field`` when it holds a forbidden character."""
    bad = forbidden_character(text)
    if bad is not None:
        raise InvalidInput(f"invalid {field}: control or invisible character {bad} is not allowed",
                           fields=[{"field": field, "message": f"character {bad} is not allowed",
                                    "type": "forbidden_character"}])
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def clean_json(value: Any, field: str = "body", depth: int = 0) -> Any:
    """``value`` with every string (keys too) cleaned; InvalidInput for a forbidden character, a list longer
    than MAX_LIST_ITEMS or nesting deeper than MAX_DEPTH, naming the field."""
    if isinstance(value, str):
        return clean_text(value, field)
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        raise InvalidInput(f"invalid {field}: nested deeper than {MAX_DEPTH} levels",
                           fields=[{"field": field, "message": "nested too deep", "type": "too_deep"}])
    if isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            raise InvalidInput(f"invalid {field}: at most {MAX_LIST_ITEMS} items, got {len(value)}",
                               fields=[{"field": field, "message": f"at most {MAX_LIST_ITEMS} items",
                                        "type": "too_long"}])
        return [clean_json(v, f"{field}.{i}", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {clean_text(k, f"{field}.{k!r}"): clean_json(v, f"{field}.{k}", depth + 1) for k, v in value.items()}
    return value
