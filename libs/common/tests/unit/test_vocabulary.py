"""The catalog vocabulary: brand and colour canonicalisation for filters, and the guarded fuzzy lookup."""

import pytest

from pickwise_common.vocabulary import base_colors, canonical_brand, canonical_color, correct_words, fuzzy_word

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("value", "brand"), [
    ("samsung", "Samsung"), ("SAMSUNG", "Samsung"), ("Galaxy", "Samsung"), ("one plus", "OnePlus"),
    ("one-plus", "OnePlus"), ("oneplus", "OnePlus"), ("Google Pixel", "Google"), ("iqoo", "iQOO"),
    ("redmi", "Xiaomi"), ("smasung", "Samsung"), ("motorla", "Motorola"),
])
def test_canonical_brand(value: str, brand: str) -> None:
    assert canonical_brand(value) == brand


@pytest.mark.parametrize("value", ["", "foo", "<script>", "5g", "phone", "apply"])
def test_canonical_brand_none_for_non_brands(value: str) -> None:
    assert canonical_brand(value) is None


@pytest.mark.parametrize(("value", "color"), [
    ("ocean blue", "ocean blue"), ("Rose-Gold", "rose gold"), ("gray", "grey"), ("Midnight  Black", "midnight black"),
    ("blakc", "black"), ("BLUE", "blue"),
])
def test_canonical_color(value: str, color: str) -> None:
    assert canonical_color(value) == color


@pytest.mark.parametrize("value", ["<script>", "fast", "blue; drop", "", "blue 5g", 'red" or 1==1'])
def test_canonical_color_none_for_non_colours(value: str) -> None:
    assert canonical_color(value) is None


def test_base_colors_of_a_colour_name() -> None:
    assert base_colors("Ocean Blue") == ["blue"]
    assert base_colors("Space Gray") == ["grey"]


@pytest.mark.parametrize("word", ["5g", "mi", "lg", "note", "apply", "external", "generator", "camera"])
def test_fuzzy_word_guards(word: str) -> None:
    assert fuzzy_word(word) is None


def test_fuzzy_word_reads_a_transposition_as_one_edit() -> None:
    assert fuzzy_word("smasung") == "samsung"


def test_short_word_must_keep_its_first_letter() -> None:
    assert fuzzy_word("lbue") is None      # 'blue' by a swap of the first two letters: too risky in 4 letters


def test_correct_words_reports_each_fix() -> None:
    text, corrections = correct_words("smasung phnoe 8gb")
    assert text == "samsung phone 8gb"
    assert [(c.from_, c.to) for c in corrections] == [("smasung", "samsung"), ("phnoe", "phone")]
