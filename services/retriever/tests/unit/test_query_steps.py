"""The parse steps one by one with plain values, typo-tolerant reading and the guards that keep words as typed."""

import pytest

from pickwise_retriever.query_parser import (
    Found,
    constraints_of,
    correct_spelling,
    is_informative,
    normalise_text,
    parse_query,
    read_bands,
    read_brands,
    read_colors,
    read_discounts,
    read_feature_phone,
    read_memory,
    read_prices,
    read_ratings,
    read_sort_intents,
    search_text,
    strip_chatter,
    words_to_numbers,
)

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------- tidy


def test_normalise_text_drops_thousands_separators_and_currency_sign() -> None:
    assert normalise_text("Phones below ₹15,000") == "phones below rs 15000"


@pytest.mark.parametrize(("text", "tidy"), [
    ("hey, can you show me samsung phones? thanks!", "samsung phones"),
    ("hi there i am looking for a vivo phone under 20k please", "a vivo phone under 20k"),
    ("i want to buy cheapest nokia phone asap", "cheapest nokia phone"),
    ("what's the best rated oppo mobile", "what the best rated oppo mobile"),
    ("nokia 2.4.", "nokia 2.4"),
])
def test_strip_chatter_keeps_only_the_request(text: str, tidy: str) -> None:
    assert strip_chatter(text) == tidy


def test_strip_chatter_keeps_a_follow_up_cue() -> None:
    assert strip_chatter("ok what about samsung") == "ok what about samsung"


@pytest.mark.parametrize(("text", "numbers"), [
    ("under twenty five thousand", "under 25 thousand"),
    ("eight gb ram", "8 gb ram"),
    ("between ten and fifteen thousand", "between 10 and 15 thousand"),
    ("one lakh phone", "1 lakh phone"),
    ("four stars", "4 stars"),
    ("two hundred fifty gb", "250 gb"),
])
def test_words_to_numbers(text: str, numbers: str) -> None:
    assert words_to_numbers(text) == numbers


@pytest.mark.parametrize("text", ["one plus nord", "nothing phone one", "samsung and one plus", "the one i like"])
def test_number_words_without_a_unit_or_comparator_stay_words(text: str) -> None:
    assert words_to_numbers(text) == text


# ---------------------------------------------------------------- spelling


@pytest.mark.parametrize(("typed", "meant"), [
    ("smasung", "samsung"), ("oneplsu", "oneplus"), ("phnoe", "phone"), ("chepest", "cheapest"),
    ("discont", "discount"), ("raitng", "rating"), ("storgae", "storage"), ("thosand", "thousand"),
    ("xiomi", "xiaomi"), ("motorla", "motorola"), ("zenfne", "zenfone"), ("blak", "black"),
])
def test_misspelled_vocabulary_word_is_corrected(typed: str, meant: str) -> None:
    fixed, corrections = correct_spelling(f"{typed} 5g")
    assert fixed == f"{meant} 5g"
    assert [(c.from_, c.to) for c in corrections] == [(typed, meant)]


@pytest.mark.parametrize("text", [
    "5g phone", "note 10", "redmi note 10", "galaxy m20", "mi a3", "lg k42", "iphone 13 pro max",
    "apply filters", "external storage", "128gb 8gb 4.5", "c11 2021", "camera phone for gaming",
])
def test_guards_keep_short_numeric_and_known_words_as_typed(text: str) -> None:
    assert correct_spelling(text) == (text, [])


def test_5g_is_never_a_brand() -> None:
    parsed = parse_query("5g phone under 20k")
    assert parsed.constraints.brands == []
    assert parsed.corrections == []
    assert "5g" in parsed.text


def test_note_10_is_neither_corrected_nor_a_price() -> None:
    parsed = parse_query("note 10")
    assert parsed.corrections == []
    assert parsed.constraints.price_max_inr is None
    assert parsed.text == "note 10"


# ---------------------------------------------------------------- readers


def test_read_sort_intents_takes_cheapest() -> None:
    found, rest = read_sort_intents("cheapest gionee phones")
    assert found.fields == {"sort": "price_asc"}
    assert rest == "gionee phones"


def test_read_sort_intents_flags_a_cheaper_follow_up() -> None:
    found, rest = read_sort_intents("cheaper ones")
    assert found.flags == {"cheaper"} and found.fields == {}
    assert rest == "ones"


def test_read_ratings_takes_stars() -> None:
    found, rest = read_ratings("4+ stars vivo")
    assert found.fields == {"rating_min": 4.0}
    assert rest == "vivo"


def test_read_ratings_good_rating_is_a_floor_and_an_order() -> None:
    found, _ = read_ratings("good rating")
    assert found.fields == {"rating_min": 4.0, "sort": "rating_desc"}


def test_read_discounts_big_discount() -> None:
    found, rest = read_discounts("oppo phones with big discount")
    assert found.fields == {"discount_pct_min": 25.0} and found.flags == {"discount"}
    assert rest == "oppo phones with"


def test_read_memory_pair_sets_both_and_prefers_them() -> None:
    found, rest = read_memory("8/128 vivo")
    assert found.fields == {"ram_gb_min": 8.0, "storage_gb_min": 128.0}
    assert found.prefer == {"ram_gb": 8.0, "storage_gb": 128.0}
    assert rest == "vivo"


def test_read_memory_under_is_a_maximum() -> None:
    found, _ = read_memory("ram under 4gb")
    assert found.fields == {"ram_gb_max": 4.0}


def test_read_feature_phone() -> None:
    found, rest = read_feature_phone("nokia keypad phone")
    assert found.fields == {"feature_phone": True}
    assert rest == "nokia"


@pytest.mark.parametrize(("text", "fields"), [
    ("under 15k", {"price_max_inr": 15000}),
    ("above 50000", {"price_min_inr": 50000}),
    ("15-20k", {"price_min_inr": 15000, "price_max_inr": 20000}),
    ("around 20k", {"price_min_inr": 17000, "price_max_inr": 23000}),
    ("25 thousand phone", {"price_max_inr": 25000}),
    ("c11 2021", {}),
])
def test_read_prices(text: str, fields: dict[str, float]) -> None:
    found, _ = read_prices(text)
    assert found.fields == fields


def test_read_bands_keeps_order_of_mention() -> None:
    found, rest = read_bands("budget or mid-range phone")
    assert found.fields == {"price_bands": ["mid", "budget"]}
    assert rest == "or phone"


def test_read_brands_keeps_model_word_aliases_in_the_text() -> None:
    found, rest = read_brands("samsung galaxy m20")
    assert found.fields == {"brands": ["Samsung"]}
    assert rest == "galaxy m20"


def test_read_brands_reads_nothing_alone_as_a_word() -> None:
    found, _ = read_brands("nothing fancy")
    assert found.fields == {}


def test_read_colors_folds_gray_into_grey() -> None:
    found, rest = read_colors("iphone in gray colour")
    assert found.fields == {"colors": ["grey"]}
    assert rest == "iphone"


# ---------------------------------------------------------------- combining


def test_found_merge_takes_the_stricter_bounds_and_the_first_sort() -> None:
    a = Found(fields={"price_max_inr": 20000, "rating_min": 4.0, "sort": "price_asc"})
    a.merge(Found(fields={"price_max_inr": 15000, "rating_min": 3.5, "sort": "rating_desc"}))
    assert a.fields == {"price_max_inr": 15000, "rating_min": 4.0, "sort": "price_asc"}


def test_constraints_of_drops_bands_when_a_price_is_stated() -> None:
    constraints = constraints_of(Found(fields={"price_bands": ["premium"], "price_min_inr": 90000}))
    assert constraints.price_bands == [] and constraints.price_min_inr == 90000


def test_search_text_drops_chat_and_follow_up_cues() -> None:
    assert search_text("what about please show me redmi note 10") == "redmi note 10"


def test_is_informative_ignores_generic_and_brand_words() -> None:
    assert not is_informative("please show me pixel phones")
    assert is_informative("pixel 3a")


# ---------------------------------------------------------------- whole queries as shoppers type them


@pytest.mark.parametrize(("query", "expected"), [
    ("smasung phnoe under 25 thosand", {"brands": ["Samsung"], "price_max_inr": 25000}),
    ("chepest oneplsu phones", {"brands": ["OnePlus"], "sort": "price_asc"}),
    ("Realme phones with big discont", {"brands": ["Realme"], "discount_pct_min": 25.0}),
    ("best raitng vivo mobile", {"brands": ["Vivo"], "sort": "rating_desc"}),
    ("128gb storgae samsung", {"brands": ["Samsung"], "storage_gb_min": 128}),
    ("hey can u show me SAMSUNG phones under twenty five thousand?? thanks!",
     {"brands": ["Samsung"], "price_max_inr": 25000}),
    ("Redmi phone below 1.5 lakh", {"brands": ["Xiaomi"], "price_max_inr": 150000}),
    ("whats the cheapest GIONEE phone?", {"brands": ["Gionee"], "sort": "price_asc"}),
])
def test_shopper_typing_parses(query: str, expected: dict[str, object]) -> None:
    parsed = parse_query(query).constraints.model_dump()
    assert {k: parsed[k] for k in expected} == expected


def test_corrections_are_reported_from_and_to() -> None:
    parsed = parse_query("smasung phnoe")
    assert [c.model_dump(by_alias=True) for c in parsed.corrections] == [
        {"from": "smasung", "to": "samsung"}, {"from": "phnoe", "to": "phone"}]


def test_chatty_constraint_query_is_not_informative() -> None:
    assert not parse_query("hey, can you show me the cheapest gionee phones please? thanks").informative
