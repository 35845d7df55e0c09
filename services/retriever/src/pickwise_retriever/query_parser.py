"""Query understanding: free text → ``Constraints`` (price, brand, RAM, storage, rating, discount, band,
feature phone, colour, sort intent) plus the text left for BM25/dense search.

Pure functions, no I/O. ``parse_query`` runs small named steps in order: tidy the text (``normalise_text``,
``strip_chatter``), fix misspelled vocabulary words (``correct_spelling``), spell out number words
(``words_to_numbers``), then readers that each take the span they understood and return what they found
(``read_sort_intents``, ``read_ratings``, ``read_discounts``, ``read_memory``, ``read_feature_phone``,
``read_prices``, ``read_bands``, ``read_brands``, ``read_colors``). Prices come late so "8 GB" or "4.5 stars" are
never read as prices. Numbers count as prices only with a comparator ("under", "above", "between … and …",
"15-20k") or a currency cue (₹, rs, rupees, k, thousand, lakh), so a model name such as "Realme C11 2021" stays
text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pickwise_common import vocabulary
from pickwise_common.schemas import Constraints, Correction
from pickwise_common.vocabulary import BRAND_ALIASES, FILLER_WORDS, NUMBER_WORDS

_MODEL_WORD_ALIASES = vocabulary.MODEL_WORD_ALIASES
COLORS = (*vocabulary.BASE_COLORS, "gray")
# words that carry no product meaning once constraints are taken out
GENERIC_WORDS = frozenset(
    "phone phones mobile mobiles smartphone smartphones handset handsets cellphone cellphones cell "
    "device devices model models option options one ones something any some show me find get buy want need "
    "looking for a an the with and or of in on to by from i please good nice new latest best top "
    "under below above over between than less more within budget price priced cost costing rs inr "
    "rupees what about how also only just instead but now that those these them sort sorted range "
    "around approx approximately about at least most max maximum min minimum upto up is are has have "
    "having can you give list android category type brand brands".split()) | FILLER_WORDS

_NUM = r"\d+(?:\.\d+)?"
_UNIT = r"(?:k\b|thousand\b|grand\b|lakhs?\b|lacs?\b|lakh\b)"
_CUR = r"(?:rs\.?|inr|₹)"
_AMOUNT = rf"(?:{_CUR}\s*)?({_NUM})\s*({_UNIT})?(?:\s*(?:/-|rupees?\b|rs\b|inr\b|bucks\b))?"
_NOT_SIZE = r"(?!\s*(?:gb|mb|tb|gig|giga|tera|mega|g\b|mp|mah|hz|inch|in\b|\"|%|\+?\s*stars?|star\b|/|\.\d))"

_MIN_FIELDS = ("price_min_inr", "ram_gb_min", "storage_gb_min", "rating_min", "discount_pct_min")
_MAX_FIELDS = ("price_max_inr", "ram_gb_max", "storage_gb_max")
_LIST_FIELDS = ("brands", "price_bands", "colors")


@dataclass
class ParsedQuery:
    constraints: Constraints
    text: str                                  # what is left for BM25 / dense search
    informative: bool                          # does ``text`` say more than "phone"?
    prefer: dict[str, float] = field(default_factory=dict)   # exact RAM/storage the shopper named
    prefer_discount: bool = False
    refinement: bool = False
    names_product: bool = False                # "phone", "mobile", a brand...: a search of its own
    cheaper: bool = False
    pricier: bool = False
    mentioned: set[str] = field(default_factory=set)
    corrections: list[Correction] = field(default_factory=list)   # words read as vocabulary words


@dataclass
class Found:
    """What one step understood: constraint fields, exact sizes named, and flags
    (``discount``, ``cheaper``, ``pricier``). Several finds combine with ``merge``: minimums take the larger,
    maximums the smaller, lists keep first-seen order, anything else (sort) the first value."""

    fields: dict[str, Any] = field(default_factory=dict)
    prefer: dict[str, float] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    def at_least(self, key: str, value: float) -> None:
        self.fields[key] = max(value, self.fields.get(key) or 0.0)

    def at_most(self, key: str, value: float) -> None:
        current = self.fields.get(key)
        self.fields[key] = value if current is None else min(value, current)

    def first(self, key: str, value: Any) -> None:
        self.fields.setdefault(key, value)

    def merge(self, other: Found) -> None:
        for key, value in other.fields.items():
            if key in _MIN_FIELDS:
                self.at_least(key, value)
            elif key in _MAX_FIELDS:
                self.at_most(key, value)
            elif key in _LIST_FIELDS or key == "brands_exclude":
                current = self.fields.setdefault(key, [])
                current.extend(v for v in value if v not in current)
            else:
                self.first(key, value)
        self.prefer.update(other.prefer)
        self.flags |= other.flags


Handler = Callable[[re.Match[str]], bool | None]


class _Text:
    """The query text with consumed spans blanked out."""

    def __init__(self, text: str) -> None:
        self.text = text

    def take(self, pattern: str, handler: Handler) -> None:
        """Blank every match the handler accepts (a handler returns False to decline a match)."""
        regex = re.compile(pattern, re.I)
        pos = 0
        while True:
            match = regex.search(self.text, pos)
            if not match:
                return
            if handler(match) is False:
                pos = match.start() + 1
                continue
            self.text = self.text[:match.start()] + " " + self.text[match.end():]
            pos = match.start()

    @property
    def rest(self) -> str:
        return " ".join(self.text.split())


def _amount(value: str, unit: str | None, *, bare_thousands: bool = True) -> float:
    number = float(value)
    unit = (unit or "").lower()
    if unit in ("k", "thousand", "grand"):
        return number * 1_000
    if unit.startswith(("lakh", "lac")):
        return number * 100_000
    # "under 15" in a phone query means 15,000: a bare number below 300 next to a price comparator
    if bare_thousands and 1 <= number < 300:
        return number * 1_000
    return number


# ---------------------------------------------------------------- tidy the text


def normalise_text(query: str) -> str:
    """Lower case, one kind of dash and quote, no thousands separators, 'rs.' → 'rs', single spaces."""
    text = query.lower().replace("₹", " rs ").replace("–", "-").replace("—", "-").replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d)", "", text)          # 15,000 and 1,50,000
    text = re.sub(r"\brs\s*\.", "rs ", text)
    text = re.sub(r"(\d)\s*(k|l)\s*(?=-|to\b)", r"\1\2 ", text)
    return " ".join(text.split())


_OPENING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|yo|so|um+|uh+|well)\b(?:\s+there\b)?\s*)*"
    r"(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+|pls\s+|kindly\s+)?"
    r"(?:show|find|suggest|recommend|give|get|help|tell|list)(?:\s+me)?(?:\s+(?:find|with|to find|pick))?\b|"
    r"(?:please\s+|pls\s+|kindly\s+)?(?:show|find|suggest|recommend|give|get)\s+me\b|"
    r"i\s*(?:am|'m|m)?\s+(?:looking|searching|hunting|shopping)\s+for\b|"
    r"i\s+(?:want|need|would like|'d like|wanna)(?:\s+to\s+(?:buy|get|see|find))?\b|"
    r"(?:looking|searching)\s+for\b|(?:do you have|have you got|got)\b)?")
_CLOSING = re.compile(
    r"(?:\b(?:thanks|thank you|thx|ty|cheers|please|pls|plz|asap|any (?:suggestions?|ideas|recommendations?)|"
    r"(?:for me|for my (?:mom|dad|wife|son|daughter|father|mother))|anyone|help)\b\s*)+$")


def strip_chatter(text: str) -> str:
    """Drop sentence punctuation, contractions, greetings and request phrases around the query:
    'hey, can you show me samsung phones? thanks!' → 'samsung phones'."""
    text = re.sub(r"[?!;\"()\[\]{}*]|,|(?<!\d)\.(?!\d)|\.(?=\s|$)", " ", text)
    text = re.sub(r"(?<=[a-z])'(?:s|m|d|ll|re|ve)\b", "", text).replace("'", " ")
    text = " ".join(text.split())
    text = _OPENING.sub("", text, count=1).strip()
    text = _CLOSING.sub("", text).strip()
    return " ".join(text.split())


def correct_spelling(text: str) -> tuple[str, list[Correction]]:
    """Misspelled brand, model, colour, unit and intent words read as the vocabulary word ('smasung' →
    'samsung'); short words, words with digits and known words stay as typed."""
    fixed, found = vocabulary.correct_words(text)
    return fixed, [Correction(**{"from": c.from_, "to": c.to}) for c in found]


_UNIT_AFTER = r"(?:thousand|thousands|lakh|lakhs|lac|lacs|k|grand|hundred|gb|tb|mb|gigs?|stars?|percent|%|rupees|rs)"
_COMPARATOR_BEFORE = frozenset("under below above over around about between from to and upto within than".split())


def words_to_numbers(text: str) -> str:
    """'twenty five thousand' → '25 thousand', 'eight gb' → '8 gb'; a number word stays a word unless a unit
    follows or a comparator precedes it ('one plus' and 'nothing phone one' keep theirs)."""
    tokens = text.split()
    out: list[str] = []
    i = 0
    while i < len(tokens):
        j, value, current = i, 0, 0
        while j < len(tokens) and tokens[j] in NUMBER_WORDS:
            number = NUMBER_WORDS[tokens[j]]
            if number == 100:
                current = max(current, 1) * 100
            else:
                current += number
            j += 1
        value = current
        if j == i:
            out.append(tokens[i])
            i += 1
            continue
        after = tokens[j] if j < len(tokens) else ""
        before = out[-1] if out else ""
        unit_follows = re.fullmatch(_UNIT_AFTER, after) is not None
        if after in ("plus", "+") or not (unit_follows or before in _COMPARATOR_BEFORE):
            out.extend(tokens[i:j])
        else:
            out.append(str(value))
        i = j
    return " ".join(out)


# ---------------------------------------------------------------- readers: text → (found, rest of text)


def read_sort_intents(text: str) -> tuple[Found, str]:
    """'cheapest' → sort price_asc, 'most expensive' → price_desc; 'cheaper'/'pricier' are refinement flags."""
    t, found = _Text(text), Found()

    def sort(intent: str) -> Handler:
        def handler(_m: re.Match[str]) -> None:
            found.first("sort", intent)
        return handler

    def flag(name: str) -> Handler:
        def handler(_m: re.Match[str]) -> None:
            found.flags.add(name)
        return handler

    t.take(r"\b(?:cheapest|lowest[- ]priced?|lowest cost|least expensive|least costly|most affordable|"
           r"price\s*(?::|-)?\s*low(?:est)?\s*to\s*high(?:est)?|low to high|sort(?:ed)? by price)\b",
           sort("price_asc"))
    t.take(r"\b(?:most expensive|costliest|priciest|highest[- ]priced?|"
           r"price\s*(?::|-)?\s*high(?:est)?\s*to\s*low(?:est)?|high to low)\b", sort("price_desc"))
    t.take(r"\b(?:cheaper|less expensive|lower[- ]priced|more affordable|lower price|lower budget)\b", flag("cheaper"))
    t.take(r"\b(?:more expensive|pricier|costlier|higher[- ]end|higher price|more premium)\b", flag("pricier"))
    return found, t.rest


def read_ratings(text: str) -> tuple[Found, str]:
    """'4+ stars', 'rating above 4' → rating_min; 'highly rated' → rating_min 4 sorted by rating;
    'best rated' → sorted by rating."""
    t, found = _Text(text), Found()

    def rating_min(m: re.Match[str]) -> None:
        value = float(m.group("r"))
        if 0 < value <= 5:
            found.at_least("rating_min", value)

    def well_rated(_m: re.Match[str]) -> None:
        found.at_least("rating_min", 4.0)
        found.first("sort", "rating_desc")

    def best_rated(_m: re.Match[str]) -> None:
        found.first("sort", "rating_desc")

    t.take(rf"\b(?:rating|rated|ratings|stars?)\s*(?:of\s*)?(?:(?:above|over|at least|atleast|more than|"
           rf"greater than|min(?:imum)?|>=?|of at least|not less than)\s*)?(?P<r>{_NUM})\s*\+?"
           rf"(?:\s*(?:stars?|and above|and up|or (?:more|above|higher|better)|plus))?", rating_min)
    t.take(rf"\b(?:(?:above|over|at least|atleast|more than|min(?:imum)?)\s*)?(?P<r>{_NUM})\s*\+?\s*"
           rf"(?:stars?|star rating|rating|rated)(?:\s*(?:and above|and up|or (?:more|above|higher|better)|"
           rf"plus))?", rating_min)
    t.take(r"\b(?:highly|well|positively|good|great|high|excellent)[- ]?(?:rated|reviewed|ratings?|reviews?)\b",
           well_rated)
    t.take(r"\b(?:best|top|highest|most)[- ]?(?:rated|reviewed|rating|ratings|reviews|loved|liked|popular)\b|"
           r"\bsort(?:ed)? by rating\b|\bbest rating\b", best_rated)
    return found, t.rest


def read_discounts(text: str) -> tuple[Found, str]:
    """'30% off' → discount_pct_min 30; 'big discount' → 25; 'discounted', 'on sale' → 10."""
    t, found = _Text(text), Found()

    def minimum(value: float | None) -> Handler:
        def handler(m: re.Match[str]) -> None:
            found.at_least("discount_pct_min", min(float(m.group("d")), 95.0) if value is None else value)
            found.flags.add("discount")
        return handler

    t.take(rf"\b(?:(?:at least|atleast|min(?:imum)?|over|above|more than)\s*)?(?P<d>{_NUM})\s*%\s*"
           rf"(?:or more\s*)?(?:off|discount|discounted|flat off|savings?)\b", minimum(None))
    t.take(rf"\bdiscount(?:s)?\s*(?:of\s*)?(?:(?:at least|atleast|above|over|more than)\s*)?(?P<d>{_NUM})\s*%",
           minimum(None))
    t.take(r"\b(?:big|bigger|biggest|huge|massive|heavy|heavily|steep|deep|great|best|good|high|large|"
           r"maximum|max|top|major|solid)\s+(?:discounts?|discounted|deals?|offers?|price cuts?|savings?|"
           r"markdowns?)\b|\bdeeply discounted\b|\bbest deals?\b", minimum(25.0))
    t.take(r"\b(?:discounts?|discounted|on sale|on offer|deals?|offers?|price drop|marked down)\b", minimum(10.0))
    return found, t.rest


def size_gb(value: str, unit: str | None) -> float:
    """'512', 'mb' → 0.5; '1', 'tb' → 1024; gigabytes unchanged."""
    letter = (unit or "gb").lower()[0]
    number = float(value)
    return number * 1024 if letter == "t" else number / 1024 if letter == "m" else number


def read_memory(text: str) -> tuple[Found, str]:
    """RAM and storage: '8/128', '8gb ram', 'at least 128 gb storage', 'ram under 4gb'; a bare size goes to RAM
    up to 18 GB, storage above. An exact size named ('8gb ram', not 'at least') is also a preference."""
    t, found = _Text(text), Found()

    def pair(m: re.Match[str]) -> bool | None:
        ram, storage = float(m.group(1)), float(m.group(2))
        if not (0 < ram <= 24 and 8 <= storage <= 2048 and storage > ram):
            return False
        found.at_least("ram_gb_min", ram)
        found.at_least("storage_gb_min", storage)
        found.prefer["ram_gb"], found.prefer["storage_gb"] = ram, storage
        return None

    def memory(kind: str | None) -> Handler:
        def handler(m: re.Match[str]) -> None:
            gb = size_gb(m.group("n"), m.group("u"))
            which = kind or ("ram" if gb <= 18 else "storage")
            lo = (m.group("lo") or "").strip()
            hi = (m.group("hi") or "").strip()
            post = (m.group("post") or "").strip()
            key = "ram_gb" if which == "ram" else "storage_gb"
            if hi or post in ("or less", "and below", "or below", "max"):
                found.at_most(f"{key}_max", gb)
            else:
                found.at_least(f"{key}_min", gb)
                if not lo and post not in ("or more", "and above", "+", "plus", "or above"):
                    found.prefer[key] = gb
        return handler

    t.take(rf"\b({_NUM})\s*(?:gb)?\s*(?:ram)?\s*[/+&]\s*({_NUM})\s*(?:gb|tb)?\b(?:\s*(?:rom|storage|variant))?", pair)
    lo = r"(?P<lo>at least |atleast |min(?:imum)? |more than |over |above |minimum of |\+ )?"
    hi = r"(?P<hi>under |below |less than |upto |up to |max(?:imum)? |at most )?"
    post = r"(?P<post>\s*(?:\+|plus|or more|and above|or above|or less|and below|or below|max)\b|\s*\+)?"
    size = rf"(?P<n>{_NUM})\s*(?P<u>gb|tb|mb|gigs?|gigabytes?|terabytes?|megabytes?)\b"
    t.take(rf"{lo}{hi}{size}{post}\s*(?:of\s+)?(?:ram|memory ram|ram memory)\b", memory("ram"))
    t.take(rf"\bram\s*(?:of\s*|:\s*|is\s*)?{lo}{hi}{size}{post}", memory("ram"))
    t.take(rf"{lo}{hi}{size}{post}\s*(?:of\s+)?(?:internal\s+)?(?:storage|rom|internal|space|"
           rf"inbuilt|built-in|disk)\b(?:\s*(?:memory|space|storage))?", memory("storage"))
    t.take(rf"\b(?:storage|rom|internal memory|internal storage|inbuilt storage|memory)\s*(?:of\s*|:\s*|is\s*)?"
           rf"{lo}{hi}{size}{post}", memory("storage"))
    t.take(rf"{lo}{hi}{size}{post}(?:\s*(?:memory|variant|version|model))?", memory(None))
    return found, t.rest


def read_feature_phone(text: str) -> tuple[Found, str]:
    """'keypad phone', 'basic mobile', 'feature phone' → feature_phone."""
    t, found = _Text(text), Found()

    def feature(_m: re.Match[str]) -> None:
        found.fields["feature_phone"] = True

    t.take(r"\b(?:keypad|key pad|keyboard|button|feature|basic|dumb|bar|non[- ]?smart|simple|"
           r"old[- ]school)\s*(?:mobile|phone|handset|cell)?s?\b", feature)
    return found, t.rest


def read_prices(text: str) -> tuple[Found, str]:
    """Ranges ('15-20k', 'between 8000 and 13000'), caps ('under 15k'), floors ('above 50000'), 'around 20k'
    and 'priced at ₹20,000' (±15 %), then a bare amount with a currency cue ('15k phone') as a cap."""
    t, found = _Text(text), Found()

    def price_range(m: re.Match[str]) -> bool | None:
        unit_lo, unit_hi = m.group(2), m.group(4)
        currency = bool(unit_lo or unit_hi) or bool(re.search(r"rs|inr|rupee|price|budget|cost|between|from",
                                                              m.group(0)))
        a, b = float(m.group(1)), float(m.group(3))
        hi_v = _amount(m.group(3), unit_hi)
        lo_v = _amount(m.group(1), unit_lo or (unit_hi if a < b else None))
        if not currency and (lo_v < 500 or hi_v < 500):
            return False
        found.at_least("price_min_inr", min(lo_v, hi_v))
        found.at_most("price_max_inr", max(lo_v, hi_v))
        return None

    def bound(kind: str) -> Handler:
        def handler(m: re.Match[str]) -> bool | None:
            value = _amount(m.group(1), m.group(2))
            if value < 100:
                return False
            if kind in ("cap", "around"):
                found.at_most("price_max_inr", round(value * 1.15) if kind == "around" else value)
            if kind in ("floor", "around"):
                found.at_least("price_min_inr", round(value * 0.85) if kind == "around" else value)
            return None
        return handler

    def priced_at(m: re.Match[str]) -> bool | None:
        value = _amount(m.group(1), m.group(2), bare_thousands=False)
        currency = bool(m.group(2) or re.search(r"rs|inr|rupee|/-", m.group(0)))
        if value < 1000 or (not currency and 1990 <= value <= 2035):  # "for 2021" is a model year
            return False
        found.at_least("price_min_inr", round(value * 0.85))
        found.at_most("price_max_inr", round(value * 1.15))
        return None

    def bare_price(m: re.Match[str]) -> bool | None:
        if not (m.group(2) or re.search(r"rs|inr|rupee|bucks|/-", m.group(0))):
            return False
        value = _amount(m.group(1), m.group(2), bare_thousands=False)
        if value < 100:
            return False
        found.at_most("price_max_inr", value)
        return None

    between = r"(?:(?:price|priced|budget|cost|costing)\s*(?:range\s*)?(?:of\s*|is\s*)?)?"
    t.take(rf"\b{between}(?:between|from|in the range(?: of)?|range(?: of)?)\s*{_AMOUNT}{_NOT_SIZE}\s*"
           rf"(?:and|to|-|till|until|up ?to|through)\s*{_AMOUNT}{_NOT_SIZE}(?:\s*(?:range|budget))?", price_range)
    t.take(rf"(?<![\w.]){_AMOUNT}{_NOT_SIZE}\s*(?:-|to)\s*{_AMOUNT}{_NOT_SIZE}(?:\s*(?:range|budget|price))?",
           price_range)
    price_words = r"(?:(?:price|priced|cost|costing|budget|that costs?|for)\s*(?:is\s*|of\s*)?)?"
    t.take(rf"\b{price_words}(?:under|below|beneath|sub|less than|lesser than|lower than|cheaper than|within|"
           rf"in|inside|upto|up to|till|until|max(?:imum)?|at most|not more than|no more than|not over|"
           rf"not exceeding|<=?|≤)\s*(?:(?:a|an|the|my)\s+)?(?:budget\s*(?:of\s*)?)?{_AMOUNT}{_NOT_SIZE}"
           rf"(?:\s*(?:budget|range|price|max|only))?", bound("cap"))
    t.take(rf"{_AMOUNT}{_NOT_SIZE}\s*(?:and below|and under|or less|or below|or under|max|maximum|"
           rf"at most|budget|price cap)\b", bound("cap"))
    t.take(rf"\bbudget\s*(?:is\s*|of\s*|:\s*|around\s*|about\s*)?{_AMOUNT}{_NOT_SIZE}", bound("cap"))
    t.take(rf"\b{price_words}(?:above|over|more than|greater than|higher than|at least|atleast|"
           rf"min(?:imum)?|starting(?: from| at)?|upwards of|costlier than|pricier than|not less than|"
           rf"from|>=?|≥)\s*{_AMOUNT}{_NOT_SIZE}", bound("floor"))
    t.take(rf"{_AMOUNT}{_NOT_SIZE}\s*(?:\+|and above|and up|and over|or more|or above|plus|onwards|"
           rf"upwards|minimum)", bound("floor"))
    t.take(rf"\b{price_words}(?:around|about|approx(?:imately)?|near|close to|roughly|nearly|~)\s*"
           rf"{_AMOUNT}{_NOT_SIZE}", bound("around"))
    t.take(rf"\b(?:priced at|priced|price of|price|prices|costs?|costing|for)\s*(?:of\s*|is\s*|:\s*)?"
           rf"{_AMOUNT}{_NOT_SIZE}", priced_at)
    t.take(rf"(?<![\w.]){_AMOUNT}{_NOT_SIZE}", bare_price)
    return found, t.rest


def read_bands(text: str) -> tuple[Found, str]:
    """'budget', 'mid-range', 'premium', 'flagship' → price_bands (parse_query drops them when a price is
    stated)."""
    t, found = _Text(text), Found()
    bands: list[str] = []

    def band(name: str) -> Handler:
        def handler(_m: re.Match[str]) -> None:
            if name not in bands:
                bands.append(name)
        return handler

    t.take(r"\bmid[- ]?(?:range|ranged|segment|budget|tier|level)\b|\bmidrange\b|\bmid\b", band("mid"))
    t.take(r"\b(?:flagships?|high[- ]end|top[- ]end|top of the line|ultra[- ]premium|luxury|"
           r"top[- ]tier)\b", band("flagship"))
    t.take(r"\b(?:premium|upper[- ]mid(?:[- ]?range)?)\b", band("premium"))
    t.take(r"\b(?:budget|cheap|affordable|inexpensive|low[- ]cost|low[- ]budget|low[- ]priced|"
           r"entry[- ]level|economical|value for money|pocket[- ]friendly|wallet[- ]friendly)\b", band("budget"))
    if bands:
        found.fields["price_bands"] = bands
    return found, t.rest


# "nothing" alone is a word, not the brand; "google pixel" is read as "google" + the model word "pixel"
_QUERY_BRAND_ALIASES = {a: b for a, b in BRAND_ALIASES.items() if a not in ("nothing", "google pixel")}
_BRAND_RE = re.compile(
    r"(?<![\w+])(?P<neg>(?:not|no|except|excluding|other than|apart from|but not|without|besides)\s+)?(?P<b>"
    + "|".join(re.escape(a) for a in sorted(_QUERY_BRAND_ALIASES, key=len, reverse=True)) + r")(?![\w+])", re.I)


def read_brands(text: str) -> tuple[Found, str]:
    """Brand names and aliases ('redmi' → Xiaomi); 'not samsung' excludes. Aliases that are model words
    ('galaxy', 'pixel') stay in the text for the search."""
    found = Found()
    brands: list[str] = []
    exclude: list[str] = []
    rest = text
    for m in _BRAND_RE.finditer(text):
        alias = m.group("b").lower()
        (exclude if m.group("neg") else brands).append(_QUERY_BRAND_ALIASES[alias])
        if alias not in _MODEL_WORD_ALIASES or m.group("neg"):
            rest = rest.replace(m.group(0), " ", 1)
    brands = [b for i, b in enumerate(brands) if b not in brands[:i] and b not in exclude]
    if brands:
        found.fields["brands"] = brands
    if exclude:
        found.fields["brands_exclude"] = sorted(set(exclude))
    return found, " ".join(rest.split())


def read_colors(text: str) -> tuple[Found, str]:
    """Base colour words ('in black', 'blue colour') → colors, 'gray' read as 'grey'."""
    found = Found()
    colors: list[str] = []
    for color in COLORS:
        if re.search(rf"\b{color}\b", text):
            colors.append(vocabulary.COLOR_SYNONYMS.get(color, color))
            text = re.sub(rf"\b(?:in\s+)?{color}\b(?:\s+colou?r(?:ed)?)?", " ", text)
    if colors:
        found.fields["colors"] = sorted(set(colors))
    return found, " ".join(text.split())


READERS = (read_sort_intents, read_ratings, read_discounts, read_memory, read_feature_phone, read_prices,
           read_bands, read_brands, read_colors)


# ---------------------------------------------------------------- what the rest of the text says


_REFINEMENT_START = re.compile(r"^\s*(?:what|how)\s+about\b|^\s*(?:and|also|only|just|but|now|instead|same|"
                               r"ok|okay|then|any)\b")


def is_refinement(text: str, leftover: str, found: Found) -> bool:
    """A follow-up of the previous turn: 'what about …', 'cheaper', 'those in black'."""
    return bool(_REFINEMENT_START.match(text)) or "cheaper" in found.flags or "pricier" in found.flags or \
        bool(re.search(r"\b(?:instead|ones|those|these|them|similar|same)\b", leftover))


def search_text(leftover: str) -> str:
    """The text BM25 and dense search read: the leftover without refinement cues and chat filler."""
    leftover = re.sub(r"^(?:(?:what|how)\s+about|and|also|only|just|but|now|instead)\b", " ", leftover)
    return " ".join(w for w in leftover.split() if w not in FILLER_WORDS)


def is_informative(leftover: str) -> bool:
    """Does the text name more than 'phone'? Brand words ('pixel', 'galaxy') restate the brand filter."""
    return any(w not in GENERIC_WORDS and w not in BRAND_ALIASES for w in re.findall(r"[a-z0-9.]+", leftover))


def names_product(text: str, found: Found) -> bool:
    """'phone', 'mobile', a brand…: a search of its own rather than a follow-up."""
    return bool(found.fields.get("brands")) or bool(re.search(
        r"\b(?:phones?|mobiles?|smartphones?|handsets?|cellphones?|iphones?)\b", text))


def constraints_of(found: Found) -> Constraints:
    """The constraints found; a band word counts only when no price was stated."""
    fields = dict(found.fields)
    if fields.get("price_min_inr") is not None or fields.get("price_max_inr") is not None:
        fields.pop("price_bands", None)
    return Constraints(**{k: v for k, v in fields.items() if v is not None})


def parse_query(query: str) -> ParsedQuery:
    tidy = strip_chatter(normalise_text(query))
    corrected, corrections = correct_spelling(tidy)
    text = words_to_numbers(corrected)
    found = Found()
    rest = text
    for reader in READERS:
        step, rest = reader(rest)
        found.merge(step)
    constraints = constraints_of(found)
    mentioned = {k for k, v in constraints.model_dump().items() if v not in (None, [], "relevance")}
    if "sort" in found.fields:
        mentioned.add("sort")
    return ParsedQuery(constraints=constraints, text=search_text(rest), informative=is_informative(rest),
                       prefer=found.prefer, prefer_discount="discount" in found.flags,
                       refinement=is_refinement(text, rest, found), names_product=names_product(text, found),
                       cheaper="cheaper" in found.flags, pricier="pricier" in found.flags, mentioned=mentioned,
                       corrections=corrections)


def refine(previous: Constraints, parsed: ParsedQuery) -> Constraints:
    """A follow-up turn: start from the previous constraints, replace what this turn names."""
    merged = previous.model_dump()
    current = parsed.constraints.model_dump()
    for key in parsed.mentioned:
        if key in merged:
            merged[key] = current[key]
    if "price_min_inr" in parsed.mentioned or "price_max_inr" in parsed.mentioned:
        merged["price_bands"] = current["price_bands"]
    if parsed.cheaper:
        cap = previous.price_max_inr
        if cap is not None and "price_max_inr" not in parsed.mentioned:
            merged["price_max_inr"] = round(cap * 0.8)
        if "price_min_inr" not in parsed.mentioned:
            merged["price_min_inr"] = None
        if "sort" not in parsed.mentioned:
            merged["sort"] = "price_asc"
    if parsed.pricier:
        floor = previous.price_min_inr
        if "price_min_inr" not in parsed.mentioned:
            merged["price_min_inr"] = round(floor * 1.2) if floor else previous.price_max_inr
        if "price_max_inr" not in parsed.mentioned:
            merged["price_max_inr"] = None
        if "sort" not in parsed.mentioned:
            merged["sort"] = "price_desc"
    return Constraints(**merged)


def merge_filters(parsed: Constraints, filters: Constraints | None) -> Constraints:
    """Explicit filters and parsed constraints together: the stricter bound wins; lists intersect."""
    if filters is None:
        return parsed
    a, b = parsed.model_dump(), filters.model_dump()
    out: dict[str, Any] = {}
    for key in _MIN_FIELDS:
        values = [v for v in (a[key], b[key]) if v is not None]
        out[key] = max(values) if values else None
    for key in _MAX_FIELDS:
        values = [v for v in (a[key], b[key]) if v is not None]
        out[key] = min(values) if values else None
    for key in _LIST_FIELDS:
        if a[key] and b[key]:
            both = [v for v in b[key] if v in a[key]]
            # disjoint brands (query says Apple, filter says Samsung) can match nothing
            out[key] = both or (["(none)"] if key == "brands" else b[key])
        else:
            out[key] = b[key] or a[key]
    out["brands_exclude"] = sorted(set(a["brands_exclude"]) | set(b["brands_exclude"]))
    out["feature_phone"] = b["feature_phone"] if b["feature_phone"] is not None else a["feature_phone"]
    out["sort"] = b["sort"] if b["sort"] != "relevance" else a["sort"]
    return Constraints(**out)


# ---------------------------------------------------------------- another catalog's free text

# an amount in pounds; a number glued to anything but a unit ('15k', '3d', '2.5l') is not one
_GBP_AMOUNT = r"(?:£\s*|gbp\s*)?(\d+(?:\.\d+)?)(?:\s*(p|pence|pounds?|quid|gbp)\b|(?![\w.]))"
_GBP_CUE = re.compile(r"£|gbp|pounds?|quid|pence|\d\s*p\b")
# words that say nothing about the goods once a price is taken out (a gift shop's "show me something…")
FREE_TEXT_GENERIC = frozenset(
    "something anything item items thing things product products stuff cheap price priced cost costing "
    "pounds pound quid gbp pence under below above over between than less more within around about".split()) | \
    GENERIC_WORDS - {"phone", "phones", "mobile", "mobiles", "smartphone", "smartphones", "handset", "handsets",
                     "cellphone", "cellphones", "cell", "device", "devices", "model", "models"}


def _gbp(value: str, unit: str | None) -> float:
    """'5' → 5.0 pounds, '50p' / '50 pence' → 0.5."""
    amount = float(value)
    return round(amount / 100, 2) if (unit or "").lower() in ("p", "pence") else amount


def read_gbp_prices(text: str) -> tuple[Found, str]:
    """Prices of a catalog priced in pounds: 'under £5', 'below 10 pounds', 'over 2', 'between £2 and £5',
    '£2-£5', 'around £3' (±15 %), '50p'. Numbers are pounds as written (no 'k' thousands); a bare number counts
    only with a comparator or a currency cue, so '12 pencils' or 'set of 3' stay text."""
    t, found = _Text(text), Found()

    def price_range(m: re.Match[str]) -> bool | None:
        if not (_GBP_CUE.search(m.group(0)) or re.match(r"\s*(?:between|from)", m.group(0))):
            return False
        a, b = _gbp(m.group(1), m.group(2) or m.group(4)), _gbp(m.group(3), m.group(4))
        found.at_least("price_min_inr", min(a, b))
        found.at_most("price_max_inr", max(a, b))
        return None

    def bound(kind: str) -> Handler:
        def handler(m: re.Match[str]) -> None:
            value = _gbp(m.group(1), m.group(2))
            if kind in ("cap", "around"):
                found.at_most("price_max_inr", round(value * 1.15, 2) if kind == "around" else value)
            if kind in ("floor", "around"):
                found.at_least("price_min_inr", round(value * 0.85, 2) if kind == "around" else value)
        return handler

    def bare(m: re.Match[str]) -> bool | None:
        if not _GBP_CUE.search(m.group(0)):
            return False
        found.at_most("price_max_inr", _gbp(m.group(1), m.group(2)))
        return None

    t.take(rf"\b(?:between|from)\s*{_GBP_AMOUNT}\s*(?:and|to|-)\s*{_GBP_AMOUNT}", price_range)
    t.take(rf"(?<![\w.]){_GBP_AMOUNT}\s*(?:-|to)\s*{_GBP_AMOUNT}", price_range)
    t.take(rf"\b(?:under|below|less than|cheaper than|within|up ?to|max(?:imum)?|at most|no more than|<=?)\s*"
           rf"{_GBP_AMOUNT}", bound("cap"))
    t.take(rf"\b(?:over|above|more than|at least|min(?:imum)?|from|>=?)\s*{_GBP_AMOUNT}", bound("floor"))
    t.take(rf"\b(?:around|about|approx(?:imately)?|roughly|~)\s*{_GBP_AMOUNT}", bound("around"))
    t.take(rf"(?<![\w.]){_GBP_AMOUNT}", bare)
    return found, t.rest


def parse_free_text(query: str) -> ParsedQuery:
    """A query of a catalog without the phone vocabulary (retail): prices in pounds and sort intents
    ('cheapest', 'most expensive') become constraints; everything else is search text for BM25 and dense
    search. No spelling correction, brands, sizes, ratings or colours (the vocabulary behind them is the
    phone catalog's); a follow-up is only 'cheaper' / 'pricier' / 'what about …'."""
    text = strip_chatter(normalise_text(query))
    found = Found()
    rest = text
    for reader in (read_sort_intents, read_gbp_prices):
        step, rest = reader(rest)
        found.merge(step)
    constraints = Constraints(**{k: v for k, v in found.fields.items() if v is not None})
    mentioned = {k for k, v in constraints.model_dump().items() if v not in (None, [], "relevance")}
    words = [w for w in search_text(rest).split() if w not in FREE_TEXT_GENERIC]
    leftover = " ".join(words)
    return ParsedQuery(constraints=constraints, text=leftover, informative=bool(words),
                       refinement=is_refinement(text, rest, found), names_product=bool(words),
                       cheaper="cheaper" in found.flags, pricier="pricier" in found.flags, mentioned=mentioned)
