"""The catalog's vocabulary: brand aliases, model/series words, colour words, unit and intent words, and a guarded
fuzzy lookup (rapidfuzz) that reads a misspelled word as the vocabulary word it was meant to be.

Used by the retriever's query parser (typo-tolerant understanding) and by the constraint model to canonicalise
explicit ``brands``/``colors`` filters. Pure data and functions; nothing is read at import time.

Guards (why a word is *not* corrected): it has a digit ("5g", "a52", "128gb"), it is shorter than
``MIN_FUZZY_LEN`` letters ("mi", "lg"), it is already a word we know (vocabulary, chat filler, or a frequent
English word: "apply" stays "apply"), it is more than one edit (two from 8 letters) from every vocabulary word,
or two vocabulary words are equally close (an ambiguous typo stays as typed).
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, Indel

# alias (lower case, as typed) → canonical catalog brand
BRAND_ALIASES: dict[str, str] = {
    "samsung": "Samsung", "galaxy": "Samsung", "apple": "Apple", "iphone": "Apple", "iphones": "Apple",
    "realme": "Realme", "real me": "Realme", "oppo": "OPPO", "xiaomi": "Xiaomi", "redmi": "Xiaomi",
    "mi": "Xiaomi", "poco": "POCO", "nokia": "Nokia", "vivo": "Vivo", "iqoo": "iQOO", "infinix": "Infinix",
    "motorola": "Motorola", "moto": "Motorola", "gionee": "Gionee", "lenovo": "Lenovo", "asus": "Asus",
    "rog phone": "Asus", "lg": "LG", "htc": "HTC", "google": "Google", "google pixel": "Google", "pixel": "Google",
    "oneplus": "OnePlus", "one plus": "OnePlus", "one+": "OnePlus", "tecno": "Tecno", "honor": "Honor",
    "lava": "Lava", "micromax": "Micromax", "nothing": "Nothing", "nothing phone": "Nothing", "sony": "Sony",
    "xperia": "Sony",
}
BRANDS: tuple[str, ...] = tuple(sorted(set(BRAND_ALIASES.values())))

# aliases that are also words of model names ("Galaxy M20", "Redmi Note 10"): they stay in the search text
MODEL_WORD_ALIASES = frozenset({"galaxy", "iphone", "iphones", "redmi", "mi", "moto", "pixel", "rog phone", "xperia",
                                "nothing phone"})

# series and model words of the catalog's models (lower case); a typo in one is read as the word
MODEL_WORDS = frozenset(
    "galaxy iphone redmi note narzo zenfone reno nord pixel nexus razr edge fold flip ultra lite mini max pro plus "
    "prime neo metro guru desire vibe selfie superzoom stylus pioneer marathon camon spark zero hot smart power "
    "play grand star find rog xperia lumia asha optimus wildfire velvet thinq elife hypercharge turbo fusion "
    "duos dual core youth alpha magic phantom quattro spirit trend vision sport free fire live wing shot action "
    "macro reloaded master limited edition special generation screen".split())

# base colour families: a filter or a query word of these matches item colours that contain it
BASE_COLORS: tuple[str, ...] = ("black", "white", "blue", "red", "green", "gold", "silver", "grey", "purple", "violet",
                                "pink", "yellow", "orange", "bronze", "brown", "graphite", "cyan")
COLOR_SYNONYMS: dict[str, str] = {"gray": "grey"}
# further words of the catalog's colour names ("Ocean Blue", "Midnight Black", "Mint Cream"): allowed inside a
# colour filter value, and corrected when misspelled
COLOR_NAME_WORDS = frozenset(
    "midnight space titanium prism diamond phantom pearl rose awesome crush ocean power aurora glacier mint dark "
    "charcoal matte coral starry sky champagne arctic moonlight sapphire cosmic titan cool crystal metallic "
    "platinum lunar laser aura obsidian dynamic aqua nebula wave deep racing copper celestial glow rainbow jet "
    "carbon fusion steel sierra fine electric magic night twilight ice lavender cross cyber forest onyx sunrise "
    "glowing comet polar sea cloud bordeaux blazing watery oxygen mystic lightning sand starlight pacific ceramic "
    "sunset stardust quetzal cream marble mist clearly fiery dusk slate frosted alpine emerald jazz supersonic "
    "royal polished denim frost amber sandstone lake fantasy light navy gradient mirror".split())

# words that carry units, prices, ratings, discounts and sort/refinement intents
INTENT_WORDS = frozenset(
    "thousand thousands lakh lakhs rupees rupee budget price priced prices cost costing cheap cheaper cheapest "
    "expensive costliest priciest pricier affordable inexpensive economical under below above between within "
    "around approximately storage memory internal rating ratings rated reviewed reviews stars star discount "
    "discounts discounted offer offers deals savings flagship premium midrange range keypad feature basic button "
    "phone phones mobile mobiles smartphone smartphones handset handsets cellphone android highly lowest highest "
    "sorted percent".split())

# number words ("twenty five thousand"): value of each
NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}

# chat around a request ("hey, can you show me … thanks!"): no product meaning, dropped from the search text
FILLER_WORDS = frozenset(
    "a an the and or of in on to by for from with i me my we you your it its is are was be been am im ive id "
    "please pls plz kindly show find get buy want wanna need needs looking look search searching shopping "
    "hunting give list suggest suggestion suggestions recommend recommendation recommendations help hello hey "
    "hi hiya yo there thanks thank thx ty cheers could would should can will shall do does did some any "
    "anything something tell know let lets see check ideas idea advice guys folks friend dear sir mam "
    "urgently urgent asap really very much like love which what whats got have has having".split())

# further common words taken as typed (never "corrected" into a vocabulary word)
COMMON_WORDS = frozenset(
    "good nice new latest best top great better most more less than that this those these them they how also "
    "only just but now instead same similar ok okay then one ones option options model models device devices "
    "about at least upto up well high low big huge large small sale some game come home name came made make "
    "time mine nine line fine bold mode pure blur true read deal seal sell call tell mom dad wife son kid kids "
    "gift student students office work camera battery gaming display screen".split())

MIN_FUZZY_LEN = 4
# an English word at least this frequent (Google Books counts, SymSpell's dictionary) is taken as typed:
# "apply" is not a typo of "apple", "external" not of "internal"; rarer ones ("sliver", "appel") may be typos
ENGLISH_MIN_COUNT = 1_000_000


@dataclass(frozen=True)
class Correction:
    """One word read as another: ``from_`` as typed, ``to`` the vocabulary word."""

    from_: str
    to: str


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", text.strip().lower()).split())


@lru_cache(maxsize=1)
def _brand_words() -> frozenset[str]:
    return frozenset(w for alias in BRAND_ALIASES for w in alias.split() if w.isalpha())


@lru_cache(maxsize=1)
def _color_words() -> frozenset[str]:
    return frozenset(BASE_COLORS) | frozenset(COLOR_SYNONYMS) | COLOR_NAME_WORDS


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Frequent English words, from the frequency dictionary symspellpy ships (read once, on first use)."""
    path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        word, _, count = line.partition(" ")
        if count.isdigit() and int(count) >= ENGLISH_MIN_COUNT:
            words.add(word)
    return frozenset(words)


@lru_cache(maxsize=1)
def vocabulary_words() -> frozenset[str]:
    """Every word a misspelling may be corrected to."""
    return _brand_words() | MODEL_WORDS | _color_words() | INTENT_WORDS | frozenset(NUMBER_WORDS)


@lru_cache(maxsize=1)
def _fuzzy_pool() -> tuple[str, ...]:
    return tuple(sorted(vocabulary_words()))


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Words taken as typed: the vocabulary, chat filler and common words."""
    return vocabulary_words() | FILLER_WORDS | COMMON_WORDS


def max_edits(length: int) -> int:
    """Edits allowed for a word of ``length`` letters: none under MIN_FUZZY_LEN, one up to 7, two beyond."""
    if length < MIN_FUZZY_LEN:
        return 0
    return 1 if length <= 7 else 2


def fuzzy_word(word: str, choices: Iterable[str] | None = None) -> str | None:
    """The one vocabulary word ``word`` is a typo of, or None (known word, guarded, too far, or ambiguous).

    Damerau-Levenshtein distance, so a swap of two neighbours ("smasung", "phnoe") is one edit. Short words
    (< 5 letters) must also keep their first letter, where typos are rare and short words collide most.
    """
    token = word.lower()
    if not token.isalpha() or token in known_words() or token in english_words():
        return None
    limit = max_edits(len(token))
    if limit == 0:
        return None
    pool = _fuzzy_pool() if choices is None else tuple(choices)
    scored: list[tuple[int, float, str]] = []
    for candidate, distance, _ in process.extract(token, pool, scorer=DamerauLevenshtein.distance,
                                                   score_cutoff=limit, limit=None):
        if len(candidate) < MIN_FUZZY_LEN or (len(token) < 5 and candidate[0] != token[0]):
            continue
        scored.append((int(distance), _typing_cost(token, candidate), candidate))
    if not scored:
        return None
    scored.sort()
    if len(scored) > 1 and scored[0][:2] == scored[1][:2]:
        return None  # equally near two words: ambiguous, keep as typed
    return scored[0][2]


_QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_AT = {ch: (r, c) for r, row in enumerate(_QWERTY_ROWS) for c, ch in enumerate(row)}


def _neighbour_keys(a: str, b: str) -> bool:
    if a not in _KEY_AT or b not in _KEY_AT:
        return False
    (ra, ca), (rb, cb) = _KEY_AT[a], _KEY_AT[b]
    return abs(ra - rb) <= 1 and abs(ca - cb) <= 1


def _typing_cost(token: str, candidate: str) -> float:
    """Tie-break between candidates at the same edit distance: a dropped, doubled or swapped letter costs 1, a
    neighbouring key 1, any other substituted letter 2 (the insert/delete distance)."""
    if len(token) == len(candidate):
        diffs = [(a, b) for a, b in zip(token, candidate, strict=True) if a != b]
        if len(diffs) == 1 and _neighbour_keys(*diffs[0]):
            return 1.0
    return float(Indel.distance(token, candidate))


def correct_words(text: str) -> tuple[str, list[Correction]]:
    """Replace each misspelled word of ``text`` (lower case, space separated) by its vocabulary word."""
    corrections: list[Correction] = []

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        target = fuzzy_word(word)
        if target is None:
            return word
        corrections.append(Correction(from_=word, to=target))
        return target

    return re.sub(r"(?<![\w+.])[a-z]+(?![\w+])", fix, text), corrections


def canonical_brand(text: str) -> str | None:
    """'samsung', 'SAMSUNG', 'Galaxy', 'one plus', 'smasung' → the catalog brand; None when not a brand."""
    key = _norm(text)
    if not key:
        return None
    if key in BRAND_ALIASES:
        return BRAND_ALIASES[key]
    for brand in BRANDS:
        if brand.lower() == key:
            return brand
    joined = key.replace(" ", "")
    if joined in BRAND_ALIASES:
        return BRAND_ALIASES[joined]
    target = fuzzy_word(joined, choices=[a for a in BRAND_ALIASES if a.isalpha()])
    return BRAND_ALIASES[target] if target else None


def canonical_color(text: str) -> str | None:
    """A colour filter value in canonical form (lower case, single spaces, 'gray' → 'grey', typos fixed), or
    None when it is not a colour: every word must be a colour word of the catalog ('ocean blue', 'rose-gold',
    'Midnight Black'); '<script>' and 'fast' are None."""
    key = _norm(text)
    if not key or not re.fullmatch(r"[a-z]+(?: [a-z]+)*", key):
        return None
    words = []
    for word in key.split():
        if word not in _color_words():
            word = fuzzy_word(word, choices=_color_words()) or ""
            if not word:
                return None
        words.append(COLOR_SYNONYMS.get(word, word))
    return " ".join(words)


def base_colors(text: str) -> list[str]:
    """The base colour families named in a colour value: 'Ocean Blue' → ['blue'], 'Rose Gold' → ['gold']."""
    words = [COLOR_SYNONYMS.get(w, w) for w in _norm(text).split()]
    return [w for w in BASE_COLORS if w in words]
