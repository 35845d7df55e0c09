"""Property test of the query parser: any text parses without raising, and what it parses is consistent."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pickwise_common.vocabulary import BRAND_ALIASES, BRANDS
from pickwise_retriever.query_parser import COLORS, parse_query

pytestmark = pytest.mark.unit

_WORDS = [*BRAND_ALIASES, "phone", "under", "above", "between", "and", "to", "k", "lakh", "thousand", "gb", "ram",
          "storage", "stars", "rating", "cheapest", "discount", "%", "off", "rs", "₹", "budget", "flagship",
          "not", "keypad", "note", "5g", "what about", "cheaper", "twenty", "one", "plus", "smasung", "phnoe",
          "4.5", "8/128", "15-20k", "1,50,000", "-", "+", "?", "!", *COLORS]
_tokens = st.one_of(st.sampled_from(_WORDS), st.integers(min_value=0, max_value=2_000_000).map(str),
                    st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda f: f"{f:.1f}"),
                    st.text(max_size=8))
queries = st.one_of(st.lists(_tokens, max_size=12).map(" ".join), st.text(max_size=200))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries)
def test_parse_never_raises_and_constraints_are_consistent(query: str) -> None:
    parsed = parse_query(query)
    c = parsed.constraints
    for lo, hi in ((c.price_min_inr, c.price_max_inr), (c.ram_gb_min, c.ram_gb_max),
                   (c.storage_gb_min, c.storage_gb_max)):
        assert lo is None or lo >= 0
        assert hi is None or hi >= 0
        # a min above its max is only ever flagged, never silently swapped
        assert c.impossible == any(
            a is not None and b is not None and a > b
            for a, b in ((c.price_min_inr, c.price_max_inr), (c.ram_gb_min, c.ram_gb_max),
                         (c.storage_gb_min, c.storage_gb_max)))
    assert c.rating_min is None or 0 < c.rating_min <= 5
    assert c.discount_pct_min is None or 0 <= c.discount_pct_min <= 95
    assert set(c.brands) <= set(BRANDS) and set(c.brands_exclude) <= set(BRANDS)
    assert not set(c.brands) & set(c.brands_exclude)
    assert len(c.brands) == len(set(c.brands))
    assert set(c.colors) <= set(COLORS) - {"gray"}
    assert c.price_bands == [] or (c.price_min_inr is None and c.price_max_inr is None)
    assert parsed.mentioned >= {k for k in ("brands", "price_min_inr", "price_max_inr", "colors")
                                if getattr(c, k)}
    assert not parsed.informative or parsed.text  # an informative query leaves words to search
    for correction in parsed.corrections:
        assert correction.from_ != correction.to and correction.from_.isalpha()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_WORDS), st.integers(min_value=1, max_value=999))
def test_numbers_are_never_corrected(word: str, number: int) -> None:
    parsed = parse_query(f"{word} {number}")
    assert all(str(number) not in c.from_ for c in parsed.corrections)
