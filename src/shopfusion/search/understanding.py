"""Query understanding: price bounds, brands and attribute values the catalogue knows become filters; what is left
is the text to retrieve with; the catalogue's own words predict the category the shopper means.

Only values the catalogue actually has become filters (a colour word in a shop without a colour attribute stays
in the text, where BM25 and the encoder can use it), so understanding never filters a query down to nothing by
guessing.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shopfusion.index.text import analyze

_NUMBER = r"(\d+(?:[.,]\d+)?)"
_CURRENCY = r"(?:[$€£¥]|usd|eur|gbp|dollars?|euros?|pounds?|bucks|元|块)?"
_PRICE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (
            rf"\bbetween\s*{_CURRENCY}\s*{_NUMBER}\s*{_CURRENCY}\s*(?:and|-|to)\s*{_CURRENCY}\s*{_NUMBER}\s*{_CURRENCY}",
            "range",
        ),
        (rf"\bfrom\s*{_CURRENCY}\s*{_NUMBER}\s*{_CURRENCY}\s*to\s*{_CURRENCY}\s*{_NUMBER}\s*{_CURRENCY}", "range"),
        (rf"[$€£¥]\s*{_NUMBER}\s*(?:-|to)\s*[$€£¥]?\s*{_NUMBER}", "range"),
        (
            rf"\b(?:under|below|less than|cheaper than|max(?:imum)?|up to|at most)\s*{_CURRENCY}\s*{_NUMBER}\s*{_CURRENCY}",
            "max",
        ),
        (rf"(?<![\w.])<\s*=?\s*{_CURRENCY}\s*{_NUMBER}\s*{_CURRENCY}", "max"),
        (rf"\b(?:over|above|more than|at least|min(?:imum)?|from)\s*{_CURRENCY}\s*{_NUMBER}\s*{_CURRENCY}", "min"),
        (rf"(?<![\w.])>\s*=?\s*{_CURRENCY}\s*{_NUMBER}\s*{_CURRENCY}", "min"),
        (rf"(?:低于|不超过|少于){_NUMBER}\s*{_CURRENCY}|{_NUMBER}\s*{_CURRENCY}\s*以[下内]", "max"),
        (rf"(?:高于|超过){_NUMBER}\s*{_CURRENCY}|{_NUMBER}\s*{_CURRENCY}\s*以上", "min"),
    )
)
SMOOTHING = 0.1  # additive smoothing of the category word model: small, so one telling word can decide


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _price_filter(low: float | None, high: float | None) -> str:
    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:g}"

    return f"{fmt(low)}..{fmt(high)}"


@dataclass(frozen=True)
class ParsedQuery:
    original: str
    text: str  # what retrieval should search for
    filters: dict[str, str] = field(default_factory=dict)  # filter field → value in the search filter syntax
    category: str | None = None  # predicted category intent (top-level path), a hint rather than a filter
    category_confidence: float = 0.0


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = r"[\s:=]+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


class QueryParser:
    def __init__(
        self,
        brands: Iterable[str] = (),
        attribute_values: Mapping[str, Iterable[str]] | None = None,
        category_terms: Mapping[str, Counter[str]] | None = None,
        category_items: Mapping[str, int] | None = None,
    ) -> None:
        # longest names first, so "black & decker" wins over "black"
        self.brands = sorted({b.strip() for b in brands if b and b.strip()}, key=lambda b: (-len(b), b))
        self.attribute_values = {
            name: sorted({str(v).strip().lower() for v in values if str(v).strip()}, key=lambda v: (-len(v), v))
            for name, values in (attribute_values or {}).items()
        }
        self.category_terms = dict(category_terms or {})
        self._category_totals = {c: sum(t.values()) for c, t in self.category_terms.items()}
        self._category_items = dict(category_items or {c: 1 for c in self.category_terms})
        self._vocabulary = len({t for terms in self.category_terms.values() for t in terms}) or 1

    @classmethod
    def from_catalog(
        cls,
        titles: Sequence[str],
        brands: Sequence[str | None],
        categories: Sequence[str | None],
        attributes: Sequence[Mapping[str, object]],
    ) -> QueryParser:
        """Brands, attribute values and per-category title words as the catalogue has them."""
        values: dict[str, set[str]] = defaultdict(set)
        for attrs in attributes:
            for name, value in attrs.items():
                if isinstance(value, str | int | float) and len(str(value)) <= 40:
                    values[name.lower()].add(str(value))
        terms: dict[str, Counter[str]] = defaultdict(Counter)
        sizes: Counter[str] = Counter()
        for title, category in zip(titles, categories, strict=True):
            top = (category or "").split(">")[0].strip()
            if top:
                terms[top].update(analyze(title))
                sizes[top] += 1
        return cls((b for b in brands if b), values, terms, sizes)

    def parse(self, query: str) -> ParsedQuery:
        text = " ".join(query.split())
        filters: dict[str, str] = {}
        text = self._extract_price(text, filters)
        text = self._extract_brand(text, filters)
        text = self._extract_attributes(text, filters)
        residual = " ".join(text.split())
        category, confidence = self.predict_category(residual or query)
        return ParsedQuery(query, residual or " ".join(query.split()), filters, category, confidence)

    def _extract_price(self, text: str, filters: dict[str, str]) -> str:
        low: float | None = None
        high: float | None = None
        for pattern, kind in _PRICE_PATTERNS:
            match = pattern.search(text)
            if match is None:
                continue
            numbers = [_number(g) for g in match.groups() if g is not None]
            if kind == "range" and len(numbers) == 2:
                low, high = min(numbers), max(numbers)
            elif kind == "max" and high is None:
                high = numbers[0]
            elif kind == "min" and low is None:
                low = numbers[0]
            text = text[: match.start()] + " " + text[match.end() :]
        if low is not None or high is not None:
            filters["price"] = _price_filter(low, high)
        return text

    def _extract_brand(self, text: str, filters: dict[str, str]) -> str:
        for brand in self.brands:
            match = _phrase_pattern(brand).search(text)
            if match:
                filters["brand"] = brand
                return text[: match.start()] + " " + text[match.end() :]
        return text

    def _extract_attributes(self, text: str, filters: dict[str, str]) -> str:
        for name, values in self.attribute_values.items():
            match = None
            for value in values:
                # single letters and bare numbers match too much by accident: only after the name ("size 10")
                named_only = len(value) < 2 or value.replace(".", "").isdigit()
                for phrase in [f"{name} {value}"] if named_only else [f"{name} {value}", value]:
                    match = _phrase_pattern(phrase).search(text)
                    if match:
                        filters[name] = value
                        text = text[: match.start()] + " " + text[match.end() :]
                        break
                if match:
                    break
        return text

    def predict_category(self, text: str) -> tuple[str | None, float]:
        """Multinomial naive Bayes over title words per top-level category: (category, posterior) or (None, 0)."""
        tokens = analyze(text)
        if not tokens or not self.category_terms:
            return None, 0.0
        total_items = sum(self._category_items.values()) or 1
        log_post = {}
        for category, terms in self.category_terms.items():
            score = math.log(self._category_items.get(category, 1) / total_items)
            denominator = self._category_totals[category] + SMOOTHING * self._vocabulary
            for token in tokens:
                score += math.log((terms.get(token, 0) + SMOOTHING) / denominator)
            log_post[category] = score
        best = max(log_post, key=lambda c: log_post[c])
        peak = log_post[best]
        norm = sum(math.exp(v - peak) for v in log_post.values())
        confidence = 1.0 / norm
        if not any(t in self.category_terms[best] for t in tokens):
            return None, 0.0  # no query word was ever seen in the category: the prior alone is no intent
        return best, round(confidence, 4)
