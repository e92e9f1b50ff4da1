"""Text analysis shared by indexing and querying: lower-casing, number/unit normalisation, CJK segmentation,
stopwords, stemming. Index and query go through the same `analyze`, so whatever it normalises matches both ways."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

_TOKEN = re.compile(r"[^\W_]+(?:[.'][^\W_]+)*", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# "1-1/2" and "1 1/2" (mixed numbers), then "3/4": fractions become decimals so that "3/4 in." meets ".75 in".
_MIXED = re.compile(r"(?<![\d./])(\d+)[\s-]+(\d+)/(\d+)(?![\d/])")
_FRACTION = re.compile(r"(?<![\d./])(\d+)/(\d+)(?![\d/])")
_LEADING_DOT = re.compile(r"(?<![\w.])\.(\d)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_TRAILING_ZEROS = re.compile(r"\b(\d+)\.0+\b")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d_])|(?<=[^\W\d_])(?=\d)")
# Spelled-out units and their abbreviations share one token (the abbreviation).
UNITS = {
    "inch": "in",
    "inches": "in",
    "feet": "ft",
    "foot": "ft",
    "gallon": "gal",
    "gallons": "gal",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "ounce": "oz",
    "ounces": "oz",
    "volt": "v",
    "volts": "v",
    "watt": "w",
    "watts": "w",
    "amps": "amp",
    "ampere": "amp",
    "amperes": "amp",
    "millimeter": "mm",
    "millimeters": "mm",
    "centimeter": "cm",
    "centimeters": "cm",
    "sq": "sq",
    "square": "sq",
    "cubic": "cu",
}
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
        "x",
    ]
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _decimal(value: float) -> str:
    return f"{round(value, 3):g}"


def normalize_numbers(text: str) -> str:
    """Fractions and leading-dot decimals as plain decimals, no thousands separators, no trailing '.0'."""
    text = _THOUSANDS.sub("", text)
    text = _MIXED.sub(
        lambda m: _decimal(int(m[1]) + int(m[2]) / int(m[3])) if int(m[3]) else m[0],
        text,
    )
    text = _FRACTION.sub(lambda m: _decimal(int(m[1]) / int(m[2])) if int(m[2]) else m[0], text)
    text = _LEADING_DOT.sub(r"0.\1", text)
    return _TRAILING_ZEROS.sub(r"\1", text)


def _segment(text: str) -> list[str]:
    if not _CJK.search(text):
        return _TOKEN.findall(text)
    import jieba

    return [t for t in jieba.lcut(text) if _TOKEN.fullmatch(t)]


def _split_alphanumeric(token: str) -> list[str]:
    """'2x4' → 2, x, 4 and '18v' → 18, v; model numbers like 'wb44t10015' also keep their whole form."""
    parts = _DIGIT_LETTER.sub(" ", token).split()
    if len(parts) <= 1:
        return [token]
    return [*parts, token] if len(token) >= 6 else parts


def analyze(text: str) -> list[str]:
    """Tokens for BM25: stemmed English words, jieba words for Chinese, normalised numbers and units."""
    words: list[str] = []
    for token in _segment(normalize_numbers(text.lower())):
        for word in _split_alphanumeric(token) if not _CJK.search(token) else [token]:
            word = UNITS.get(word, word)
            if word not in STOPWORDS:
                words.append(word)
    return list(_stemmer().stemWords(words))
