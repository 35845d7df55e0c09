"""A noisy copy of a query set, typed the way shoppers type: one typo in the longest word, random case, chatty
openings and endings, other spellings of prices and sizes. Judgments are copied unchanged, so NDCG on the copy
against the clean set measures what the noise costs.

    pickwise-pipeline noisy-queries --queries data/eval/flipkart_dev.jsonl \
        --out data/eval/flipkart_dev_noisy.jsonl --seed 7

Deterministic for a seed. The typo kinds are the four edit operations (swap of neighbours, a dropped letter, a
doubled letter, a neighbouring key), never on the first letter, where people rarely mistype.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path
from typing import Any

OPENINGS = (
    "", "hey ", "hi, ", "hello! ", "can you show me ", "could you suggest ", "i'm looking for ", "i want ",
    "please find ", "need ", "show me ", "looking for ", "any suggestions for ", "help me find ", "hey there, i need ",
    "suggest me ", "hi can u recommend ", "what are some ", "i need to buy ", "got any ",
)
ENDINGS = (
    "", "", " please", " thanks", " thank you!", "?", " pls", " for my mom", " any ideas?", " asap", "!!",
    " thx", " - suggestions?", " for gifting", " plz help",
)
# QWERTY neighbours for a substituted letter
_NEIGHBOURS = {
    "q": "wa", "w": "qes", "e": "wrd", "r": "etf", "t": "ryg", "y": "tuh", "u": "yij", "i": "uok", "o": "ipl",
    "p": "ol", "a": "qsz", "s": "adw", "d": "sfe", "f": "dgr", "g": "fht", "h": "gjy", "j": "hku", "k": "jli",
    "l": "kp", "z": "xa", "x": "zc", "c": "xv", "v": "cb", "b": "vn", "n": "bm", "m": "n",
}


def typo(word: str, rng: random.Random) -> str:
    """One edit of ``word`` at a position after its first letter."""
    if len(word) < 3:
        return word
    kind = rng.choice(("swap", "drop", "double", "neighbour"))
    i = rng.randrange(1, len(word) - 1) if kind == "swap" else rng.randrange(1, len(word))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    near = _NEIGHBOURS.get(word[i].lower())
    return word[:i] + rng.choice(near) + word[i + 1:] if near else word


def longest_word_typo(query: str, rng: random.Random) -> str:
    words = re.findall(r"[A-Za-z]+", query)
    if not words:
        return query
    longest = max(words, key=len)
    return re.sub(rf"\b{re.escape(longest)}\b", typo(longest, rng), query, count=1)


def _amount_spelling(amount: str, rng: random.Random) -> str:
    value = int(amount.replace(",", ""))
    options = [str(value), f"{value:,}", f"rs {value}", f"₹{value:,}", f"{value} rupees"]
    if value % 1000 == 0:
        k = value // 1000
        options += [f"{k}k", f"{k}K", f"{k} k", f"{k} thousand"]
    if value % 100_000 == 0:
        options.append(f"{value // 100_000} lakh")
    return rng.choice(options)


def unit_spellings(query: str, rng: random.Random) -> str:
    """Prices after a price word and GB sizes written another way ('under 20000' → 'under 20k', '8 gb' → '8GB')."""
    # only amounts after a price word: "Realme C11 2021" keeps its model year
    query = re.sub(r"\b((?:under|below|above|over|from|to|and|between|rs) )(\d{1,3}(?:,\d{3})+|\d{4,7})(?![\d.])",
                   lambda m: m.group(1) + _amount_spelling(m.group(2), rng), query, flags=re.I)
    return re.sub(r"(\d+)\s*(gb|GB|Gb)\b",
                  lambda m: rng.choice((f"{m.group(1)}gb", f"{m.group(1)} GB", f"{m.group(1)}GB", f"{m.group(1)} gb")),
                  query)


def random_case(query: str, rng: random.Random) -> str:
    return rng.choice((query.lower(), query.lower(), query, query.upper(), query.title()))


def noisy(query: str, rng: random.Random) -> str:
    """The query with units re-spelled, one typo in the longest word, random case and a chatty wrapper."""
    text = unit_spellings(query, rng)
    text = longest_word_typo(text, rng)
    text = random_case(text, rng)
    return f"{rng.choice(OPENINGS)}{text}{rng.choice(ENDINGS)}"


def noisy_set(queries: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{**q, "qid": f"{q['qid']}-noisy", "clean_query": q["query"], "query": noisy(q["query"], rng)}
            for q in queries]


def run(args: argparse.Namespace) -> int:
    queries = [json.loads(line) for line in Path(args.queries).read_text(encoding="utf-8").splitlines() if line]
    out = noisy_set(queries, args.seed)
    Path(args.out).write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in out), encoding="utf-8")
    print(f"{len(out)} noisy queries (seed {args.seed}) → {args.out}")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("noisy-queries", help="a noisy copy of a query set (typos, case, chat, units)")
    parser.add_argument("--queries", default="data/eval/flipkart_dev.jsonl")
    parser.add_argument("--out", default="data/eval/flipkart_dev_noisy.jsonl")
    parser.add_argument("--seed", type=int, default=7)
    parser.set_defaults(func=run)
