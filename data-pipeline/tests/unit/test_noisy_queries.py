"""The noisy dev-set generator: deterministic for a seed, judgments unchanged, one typo, model years kept."""

import random

import pytest

from pickwise_pipeline.noisy_queries import longest_word_typo, noisy_set, typo, unit_spellings

pytestmark = pytest.mark.unit

QUERIES = [{"qid": "q1", "kind": "under", "query": "Vivo mobile below 10000", "judgments": {"fm-00001": 2}},
           {"qid": "q2", "kind": "model", "query": "Realme C11 2021", "judgments": {"fm-00002": 1}}]


def test_same_seed_same_copy_and_judgments_kept() -> None:
    a, b = noisy_set(QUERIES, 7), noisy_set(QUERIES, 7)
    assert a == b
    assert [q["judgments"] for q in a] == [q["judgments"] for q in QUERIES]
    assert [q["clean_query"] for q in a] == [q["query"] for q in QUERIES]


def test_typo_is_one_edit_after_the_first_letter() -> None:
    rng = random.Random(3)
    for _ in range(50):
        word = typo("discount", rng)
        assert word[0] == "d"
        assert abs(len(word) - len("discount")) <= 1


def test_longest_word_gets_the_typo() -> None:
    noisy = longest_word_typo("cheapest Gionee phones", random.Random(1))
    assert noisy.split()[1:] == ["Gionee", "phones"]
    assert noisy.split()[0] != "cheapest"


def test_model_year_is_not_respelled_as_a_price() -> None:
    for seed in range(20):
        assert "2021" in unit_spellings("Realme C11 2021", random.Random(seed))
