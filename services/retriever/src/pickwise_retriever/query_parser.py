"""Query understanding: free text → ``Constraints`` (price, brand, RAM, storage, rating, discount, band,
feature phone, colour, sort intent) plus the text left for BM25/dense search.

Pure functions, no I/O. Each recogniser consumes the span it understood, so later ones (prices last) do not
read "8 GB" or "4.5 stars" as a price. Numbers count as prices only with a comparator ("under", "above",
"between … and …", "15-20k") or a currency cue (₹, rs, rupees, k, thousand, lakh), so a model name such as
"Realme C11 2021" stays text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pickwise_common.schemas import Constraints

# alias (lower case, as typed) → canonical catalog brand
BRAND_ALIASES: dict[str, str] = {
    "samsung": "Samsung", "galaxy": "Samsung", "apple": "Apple", "iphone": "Apple", "iphones": "Apple",
    "realme": "Realme", "real me": "Realme", "oppo": "OPPO", "xiaomi": "Xiaomi", "redmi": "Xiaomi",
    "mi": "Xiaomi", "poco": "POCO", "nokia": "Nokia", "vivo": "Vivo", "iqoo": "iQOO", "infinix": "Infinix",
    "motorola": "Motorola", "moto": "Motorola", "gionee": "Gionee", "lenovo": "Lenovo", "asus": "Asus",
    "rog phone": "Asus", "lg": "LG", "htc": "HTC", "google": "Google", "pixel": "Google",
    "oneplus": "OnePlus", "one plus": "OnePlus", "one+": "OnePlus", "tecno": "Tecno", "honor": "Honor",
    "lava": "Lava", "micromax": "Micromax", "nothing phone": "Nothing", "sony": "Sony", "xperia": "Sony",
}
# aliases that are also words of model names: they stay in the search text
_MODEL_WORD_ALIASES = {"galaxy", "iphone", "iphones", "redmi", "mi", "moto", "pixel", "rog phone", "xperia",
                       "nothing phone"}
COLORS = ("black", "white", "blue", "red", "green", "gold", "silver", "grey", "gray", "purple", "violet",
          "pink", "yellow", "orange", "bronze", "brown", "graphite", "cyan")
# words that carry no product meaning once constraints are taken out
GENERIC_WORDS = frozenset(
    "phone phones mobile mobiles smartphone smartphones handset handsets cellphone cellphones cell "
    "device devices model models option options one ones something any some show me find get buy want need "
    "looking for a an the with and or of in on to by from i please good nice new latest best top "
    "under below above over between than less more within budget price priced cost costing rs inr "
    "rupees what about how also only just instead but now that those these them sort sorted range "
    "around approx approximately about at least most max maximum min minimum upto up is are has have "
    "having can you give list android category type brand brands".split())

_NUM = r"\d+(?:\.\d+)?"
_UNIT = r"(?:k\b|thousand\b|grand\b|lakhs?\b|lacs?\b|lakh\b)"
_CUR = r"(?:rs\.?|inr|₹)"
_AMOUNT = rf"(?:{_CUR}\s*)?({_NUM})\s*({_UNIT})?(?:\s*(?:/-|rupees?\b|rs\b|inr\b|bucks\b))?"
_NOT_SIZE = r"(?!\s*(?:gb|mb|tb|gig|giga|tera|mega|g\b|mp|mah|hz|inch|in\b|\"|%|\+?\s*stars?|star\b|/|\.\d))"


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


def normalise_text(query: str) -> str:
    text = query.lower().replace("₹", " rs ").replace("–", "-").replace("—", "-").replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d)", "", text)          # 15,000 and 1,50,000
    text = re.sub(r"\brs\s*\.", "rs ", text)
    text = re.sub(r"(\d)\s*(k|l)\s*(?=-|to\b)", r"\1\2 ", text)
    return " ".join(text.split())


class _Text:
    """The query text with consumed spans blanked out."""

    def __init__(self, text: str) -> None:
        self.text = text

    def take(self, pattern: str, handler: Any) -> None:
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


def parse_query(query: str) -> ParsedQuery:
    text = _Text(normalise_text(query))
    c: dict[str, Any] = {}
    prefer: dict[str, float] = {}
    flags: dict[str, bool] = {"discount": False, "cheaper": False, "pricier": False}
    mentioned: set[str] = set()

    def set_min(key: str, value: float) -> None:
        c[key] = max(value, c.get(key) or 0.0)
        mentioned.add(key)

    def set_max(key: str, value: float) -> None:
        c[key] = value if c.get(key) is None else min(value, c[key])
        mentioned.add(key)

    # ---- sort intents and refinements (words first: "cheaper" is not "cheap")
    def sort(intent: str) -> Any:
        def handler(_m: re.Match[str]) -> None:
            c.setdefault("sort", intent)
            mentioned.add("sort")
        return handler

    def cheaper(_m: re.Match[str]) -> None:
        flags["cheaper"] = True

    def pricier(_m: re.Match[str]) -> None:
        flags["pricier"] = True

    text.take(r"\b(?:cheapest|lowest[- ]priced?|lowest cost|least expensive|least costly|most affordable|"
              r"price\s*(?::|-)?\s*low(?:est)?\s*to\s*high(?:est)?|low to high|sort(?:ed)? by price)\b",
              sort("price_asc"))
    text.take(r"\b(?:most expensive|costliest|priciest|highest[- ]priced?|"
              r"price\s*(?::|-)?\s*high(?:est)?\s*to\s*low(?:est)?|high to low)\b", sort("price_desc"))
    text.take(r"\b(?:cheaper|less expensive|lower[- ]priced|more affordable|lower price|lower budget)\b", cheaper)
    text.take(r"\b(?:more expensive|pricier|costlier|higher[- ]end|higher price|more premium)\b", pricier)

    # ---- rating
    def rating_min(m: re.Match[str]) -> None:
        value = float(m.group("r"))
        if 0 < value <= 5:
            set_min("rating_min", value)

    text.take(rf"\b(?:rating|rated|ratings|stars?)\s*(?:of\s*)?(?:(?:above|over|at least|atleast|more than|"
              rf"greater than|min(?:imum)?|>=?|of at least|not less than)\s*)?(?P<r>{_NUM})\s*\+?"
              rf"(?:\s*(?:stars?|and above|and up|or (?:more|above|higher|better)|plus))?", rating_min)
    text.take(rf"\b(?:(?:above|over|at least|atleast|more than|min(?:imum)?)\s*)?(?P<r>{_NUM})\s*\+?\s*"
              rf"(?:stars?|star rating|rating|rated)(?:\s*(?:and above|and up|or (?:more|above|higher|better)|"
              rf"plus))?", rating_min)

    def well_rated(_m: re.Match[str]) -> None:
        set_min("rating_min", 4.0)
        c.setdefault("sort", "rating_desc")
        mentioned.add("sort")

    text.take(r"\b(?:highly|well|positively|good|great|high|excellent)[- ]?(?:rated|reviewed|ratings?|reviews?)\b",
              well_rated)
    text.take(r"\b(?:best|top|highest|most)[- ]?(?:rated|reviewed|rating|ratings|reviews|loved|liked|popular)\b|"
              r"\bsort(?:ed)? by rating\b|\bbest rating\b", sort("rating_desc"))

    # ---- discount
    def discount_pct(m: re.Match[str]) -> None:
        set_min("discount_pct_min", min(float(m.group("d")), 95.0))
        flags["discount"] = True

    text.take(rf"\b(?:(?:at least|atleast|min(?:imum)?|over|above|more than)\s*)?(?P<d>{_NUM})\s*%\s*"
              rf"(?:or more\s*)?(?:off|discount|discounted|flat off|savings?)\b", discount_pct)
    text.take(rf"\bdiscount(?:s)?\s*(?:of\s*)?(?:(?:at least|atleast|above|over|more than)\s*)?(?P<d>{_NUM})\s*%",
              discount_pct)

    def big_discount(_m: re.Match[str]) -> None:
        set_min("discount_pct_min", 25.0)
        flags["discount"] = True

    def some_discount(_m: re.Match[str]) -> None:
        set_min("discount_pct_min", 10.0)
        flags["discount"] = True

    text.take(r"\b(?:big|bigger|biggest|huge|massive|heavy|heavily|steep|deep|great|best|good|high|large|"
              r"maximum|max|top|major|solid)\s+(?:discounts?|discounted|deals?|offers?|price cuts?|savings?|"
              r"markdowns?)\b|\bdeeply discounted\b|\bbest deals?\b", big_discount)
    text.take(r"\b(?:discounts?|discounted|on sale|on offer|deals?|offers?|price drop|marked down)\b", some_discount)

    # ---- RAM / storage
    def ram_storage_pair(m: re.Match[str]) -> bool | None:
        ram, storage = float(m.group(1)), float(m.group(2))
        if not (0 < ram <= 24 and 8 <= storage <= 2048 and storage > ram):
            return False
        set_min("ram_gb_min", ram)
        set_min("storage_gb_min", storage)
        prefer["ram_gb"], prefer["storage_gb"] = ram, storage
        return None

    text.take(rf"\b({_NUM})\s*(?:gb)?\s*(?:ram)?\s*[/+&]\s*({_NUM})\s*(?:gb|tb)?\b(?:\s*(?:rom|storage|variant))?",
              ram_storage_pair)

    def size_gb(value: str, unit: str | None) -> float:
        unit = (unit or "gb").lower()[0]
        number = float(value)
        return number * 1024 if unit == "t" else number / 1024 if unit == "m" else number

    def memory(kind: str | None) -> Any:
        def handler(m: re.Match[str]) -> None:
            gb = size_gb(m.group("n"), m.group("u"))
            which = kind or ("ram" if gb <= 18 else "storage")
            lo = (m.group("lo") or "").strip()
            hi = (m.group("hi") or "").strip()
            post = (m.group("post") or "").strip() if "post" in m.groupdict() else ""
            key = "ram_gb" if which == "ram" else "storage_gb"
            if hi or post in ("or less", "and below", "or below", "max"):
                set_max(f"{key}_max", gb)
            else:
                set_min(f"{key}_min", gb)
                if not lo and post not in ("or more", "and above", "+", "plus", "or above"):
                    prefer[key] = gb
        return handler

    lo = r"(?P<lo>at least |atleast |min(?:imum)? |more than |over |above |minimum of |\+ )?"
    hi = r"(?P<hi>under |below |less than |upto |up to |max(?:imum)? |at most )?"
    post = r"(?P<post>\s*(?:\+|plus|or more|and above|or above|or less|and below|or below|max)\b|\s*\+)?"
    size = rf"(?P<n>{_NUM})\s*(?P<u>gb|tb|mb|gigs?|gigabytes?|terabytes?|megabytes?)\b"
    text.take(rf"{lo}{hi}{size}{post}\s*(?:of\s+)?(?:ram|memory ram|ram memory)\b", memory("ram"))
    text.take(rf"\bram\s*(?:of\s*|:\s*|is\s*)?{lo}{hi}{size}{post}", memory("ram"))
    text.take(rf"{lo}{hi}{size}{post}\s*(?:of\s+)?(?:internal\s+)?(?:storage|rom|internal|space|"
              rf"inbuilt|built-in|disk)\b(?:\s*(?:memory|space|storage))?", memory("storage"))
    text.take(rf"\b(?:storage|rom|internal memory|internal storage|inbuilt storage|memory)\s*(?:of\s*|:\s*|is\s*)?"
              rf"{lo}{hi}{size}{post}", memory("storage"))
    text.take(rf"{lo}{hi}{size}{post}(?:\s*(?:memory|variant|version|model))?", memory(None))

    # ---- feature phones
    def feature(_m: re.Match[str]) -> None:
        c["feature_phone"] = True
        mentioned.add("feature_phone")

    text.take(r"\b(?:keypad|key pad|keyboard|button|feature|basic|dumb|bar|non[- ]?smart|simple|"
              r"old[- ]school)\s*(?:mobile|phone|handset|cell)?s?\b", feature)

    # ---- price: ranges, then caps and floors, then bare currency amounts
    def price_range(m: re.Match[str]) -> bool | None:
        unit_lo, unit_hi = m.group(2), m.group(4)
        currency = bool(unit_lo or unit_hi) or bool(re.search(r"rs|inr|rupee|price|budget|cost|between|from",
                                                              m.group(0)))
        a, b = float(m.group(1)), float(m.group(3))
        hi_v = _amount(m.group(3), unit_hi)
        lo_v = _amount(m.group(1), unit_lo or (unit_hi if a < b else None))
        if not currency and (lo_v < 500 or hi_v < 500):
            return False
        lo_v, hi_v = min(lo_v, hi_v), max(lo_v, hi_v)
        set_min("price_min_inr", lo_v)
        set_max("price_max_inr", hi_v)
        return None

    between = r"(?:(?:price|priced|budget|cost|costing)\s*(?:range\s*)?(?:of\s*|is\s*)?)?"
    text.take(rf"\b{between}(?:between|from|in the range(?: of)?|range(?: of)?)\s*{_AMOUNT}{_NOT_SIZE}\s*"
              rf"(?:and|to|-|till|until|up ?to|through)\s*{_AMOUNT}{_NOT_SIZE}(?:\s*(?:range|budget))?", price_range)
    text.take(rf"(?<![\w.]){_AMOUNT}{_NOT_SIZE}\s*(?:-|to)\s*{_AMOUNT}{_NOT_SIZE}(?:\s*(?:range|budget|price))?",
              price_range)

    def cap(m: re.Match[str]) -> bool | None:
        value = _amount(m.group(1), m.group(2))
        if value < 100:
            return False
        set_max("price_max_inr", value)
        return None

    def floor(m: re.Match[str]) -> bool | None:
        value = _amount(m.group(1), m.group(2))
        if value < 100:
            return False
        set_min("price_min_inr", value)
        return None

    def around(m: re.Match[str]) -> bool | None:
        value = _amount(m.group(1), m.group(2))
        if value < 100:
            return False
        set_min("price_min_inr", round(value * 0.85))
        set_max("price_max_inr", round(value * 1.15))
        return None

    price_words = r"(?:(?:price|priced|cost|costing|budget|that costs?|for)\s*(?:is\s*|of\s*)?)?"
    text.take(rf"\b{price_words}(?:under|below|beneath|sub|less than|lesser than|lower than|cheaper than|within|"
              rf"in|inside|upto|up to|till|until|max(?:imum)?|at most|not more than|no more than|not over|"
              rf"not exceeding|<=?|≤)\s*(?:(?:a|an|the|my)\s+)?(?:budget\s*(?:of\s*)?)?{_AMOUNT}{_NOT_SIZE}"
              rf"(?:\s*(?:budget|range|price|max|only))?", cap)
    text.take(rf"{_AMOUNT}{_NOT_SIZE}\s*(?:and below|and under|or less|or below|or under|max|maximum|"
              rf"at most|budget|price cap)\b", cap)
    text.take(rf"\bbudget\s*(?:is\s*|of\s*|:\s*|around\s*|about\s*)?{_AMOUNT}{_NOT_SIZE}", cap)
    text.take(rf"\b{price_words}(?:above|over|more than|greater than|higher than|at least|atleast|"
              rf"min(?:imum)?|starting(?: from| at)?|upwards of|costlier than|pricier than|not less than|"
              rf"from|>=?|≥)\s*{_AMOUNT}{_NOT_SIZE}", floor)
    text.take(rf"{_AMOUNT}{_NOT_SIZE}\s*(?:\+|and above|and up|and over|or more|or above|plus|onwards|"
              rf"upwards|minimum)", floor)
    text.take(rf"\b{price_words}(?:around|about|approx(?:imately)?|near|close to|roughly|nearly|~)\s*"
              rf"{_AMOUNT}{_NOT_SIZE}", around)

    def priced_at(m: re.Match[str]) -> bool | None:
        value = _amount(m.group(1), m.group(2), bare_thousands=False)
        currency = bool(m.group(2) or re.search(r"rs|inr|rupee|/-", m.group(0)))
        if value < 1000 or (not currency and 1990 <= value <= 2035):  # "for 2021" is a model year
            return False
        set_min("price_min_inr", round(value * 0.85))
        set_max("price_max_inr", round(value * 1.15))
        return None

    text.take(rf"\b(?:priced at|priced|price of|price|prices|costs?|costing|for)\s*(?:of\s*|is\s*|:\s*)?"
              rf"{_AMOUNT}{_NOT_SIZE}", priced_at)

    def bare_price(m: re.Match[str]) -> bool | None:
        if not (m.group(2) or re.search(r"rs|inr|rupee|bucks|/-", m.group(0))):
            return False
        value = _amount(m.group(1), m.group(2), bare_thousands=False)
        if value < 100:
            return False
        set_max("price_max_inr", value)
        return None

    text.take(rf"(?<![\w.]){_AMOUNT}{_NOT_SIZE}", bare_price)

    # ---- bands (an explicit price wins over a band word)
    bands: list[str] = []

    def band(name: str) -> Any:
        def handler(_m: re.Match[str]) -> None:
            if name not in bands:
                bands.append(name)
        return handler

    text.take(r"\bmid[- ]?(?:range|ranged|segment|budget|tier|level)\b|\bmidrange\b|\bmid\b", band("mid"))
    text.take(r"\b(?:flagships?|high[- ]end|top[- ]end|top of the line|ultra[- ]premium|luxury|"
              r"top[- ]tier)\b", band("flagship"))
    text.take(r"\b(?:premium|upper[- ]mid(?:[- ]?range)?)\b", band("premium"))
    text.take(r"\b(?:budget|cheap|affordable|inexpensive|low[- ]cost|low[- ]budget|low[- ]priced|"
              r"entry[- ]level|economical|value for money|pocket[- ]friendly|wallet[- ]friendly)\b", band("budget"))
    if bands and c.get("price_min_inr") is None and c.get("price_max_inr") is None:
        c["price_bands"] = bands
        mentioned.add("price_bands")

    # ---- brands (after prices: "mi" never eats a number)
    brands: list[str] = []
    exclude: list[str] = []
    aliases = sorted(BRAND_ALIASES, key=len, reverse=True)
    brand_re = re.compile(r"(?<![\w+])(?P<neg>(?:not|no|except|excluding|other than|apart from|but not|"
                          r"without|besides)\s+)?(?P<b>" + "|".join(re.escape(a) for a in aliases) +
                          r")(?![\w+])", re.I)
    residual = text.text
    for m in brand_re.finditer(text.text):
        canonical = BRAND_ALIASES[m.group("b").lower()]
        (exclude if m.group("neg") else brands).append(canonical)
        if m.group("b").lower() not in _MODEL_WORD_ALIASES or m.group("neg"):
            residual = residual.replace(m.group(0), " ", 1)
    brands = [b for i, b in enumerate(brands) if b not in brands[:i] and b not in exclude]
    if brands:
        c["brands"] = brands
        mentioned.add("brands")
    if exclude:
        c["brands_exclude"] = sorted(set(exclude))
        mentioned.add("brands_exclude")
    text.text = residual

    # ---- colours
    colors = []
    for color in COLORS:
        if re.search(rf"\b{color}\b", text.text):
            colors.append("grey" if color == "gray" else color)
            text.text = re.sub(rf"\b(?:in\s+)?{color}\b(?:\s+colou?r(?:ed)?)?", " ", text.text)
    if colors:
        c["colors"] = sorted(set(colors))
        mentioned.add("colors")

    leftover = " ".join(text.text.split())
    refinement = bool(re.match(r"^\s*(?:what|how)\s+about\b|^\s*(?:and|also|only|just|but|now|instead|same|"
                               r"ok|okay|then|any)\b", normalise_text(query))) or flags["cheaper"] or \
        flags["pricier"] or bool(re.search(r"\b(?:instead|ones|those|these|them|similar|same)\b", leftover))
    # brand words ("pixel", "galaxy") restate the brand filter: alone they do not make a query specific
    words = [w for w in re.findall(r"[a-z0-9.]+", leftover) if w not in GENERIC_WORDS and w not in BRAND_ALIASES]
    leftover = re.sub(r"^(?:(?:what|how)\s+about|and|also|only|just|but|now|instead)\b", " ", leftover).strip()
    constraints = Constraints(**{k: v for k, v in c.items() if v is not None})
    names_product = bool(brands) or bool(re.search(
        r"\b(?:phones?|mobiles?|smartphones?|handsets?|cellphones?|iphones?)\b", normalise_text(query)))
    return ParsedQuery(constraints=constraints, text=leftover, informative=bool(words), prefer=prefer,
                       names_product=names_product,
                       prefer_discount=flags["discount"], refinement=refinement, cheaper=flags["cheaper"],
                       pricier=flags["pricier"], mentioned=mentioned)


_LIST_FIELDS = ("brands", "price_bands", "colors")
_MIN_FIELDS = ("price_min_inr", "ram_gb_min", "storage_gb_min", "rating_min", "discount_pct_min")
_MAX_FIELDS = ("price_max_inr", "ram_gb_max", "storage_gb_max")


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
