"""Filters, facets and sorting of a search over the catalogue's columns, vectorised over every item."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from shopfusion.catalog.schema import category_parts, category_path
from shopfusion.search.hybrid import Hit

BUILT_IN_FILTERS = ("category", "brand", "price", "in_stock")
DEFAULT_FACETS = ("category", "brand", "in_stock")
MAX_NAMES_IN_ERRORS = 30
_TRUE, _FALSE = {"1", "true", "yes", "y"}, {"0", "false", "no", "n"}


class SearchError(ValueError):
    """A request the engine cannot answer as asked (empty query, unknown filter, bad range): say why."""


def _parse_price(value: str) -> tuple[float, float]:
    low, sep, high = value.partition("..")
    try:
        if not sep:
            raise ValueError
        bounds = (float(low) if low.strip() else -np.inf, float(high) if high.strip() else np.inf)
    except ValueError:
        raise SearchError(f"price filter expects MIN..MAX (either side may be empty), got {value!r}") from None
    if bounds[0] > bounds[1]:
        raise SearchError(f"price filter {value!r}: minimum is above maximum")
    return bounds


def _parse_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text not in _TRUE | _FALSE:
        raise SearchError(f"{name} filter expects true or false, got {value!r}")
    return text in _TRUE


def _values(value: str | Sequence[str]) -> list[str]:
    """A filter value: one string, comma-separated alternatives, or a list of alternatives."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [p.strip().lower() for p in parts if p.strip()]


@dataclass(frozen=True)
class CatalogColumns:
    """Catalogue columns as arrays, in catalogue order, and the filters, facets and sort orders over them."""

    frame: pd.DataFrame = field(repr=False)
    category: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    available: np.ndarray
    created: np.ndarray
    attributes: list[dict[str, Any]] = field(repr=False)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> CatalogColumns:
        """From a catalogue snapshot's frame."""
        created = pd.to_datetime(frame["created_at"], utc=True, errors="coerce")
        return cls(
            frame=frame,
            category=frame["category_path"].fillna("").str.lower().to_numpy(dtype=str),
            brand=frame["brand"].fillna("").str.lower().to_numpy(dtype=str),
            price=pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=np.float64),
            available=frame["available"].fillna(True).to_numpy(dtype=bool),
            created=created.map(lambda t: t.timestamp() if pd.notna(t) else -np.inf).to_numpy(dtype=np.float64),
            attributes=[json.loads(a) if a else {} for a in frame["attributes"]],
        )

    @cached_property
    def attribute_names(self) -> frozenset[str]:
        return frozenset(name for attrs in self.attributes for name in attrs)

    def _attribute_values(self, name: str) -> np.ndarray:
        def text(value: Any) -> str:
            if isinstance(value, list):
                return "\x1f".join(str(v).lower() for v in value)
            return "" if value is None else str(value).lower()

        return np.array([text(a.get(name)) for a in self.attributes], dtype=object)

    def mask(self, filters: Mapping[str, str | Sequence[str]]) -> np.ndarray | None:
        """Catalogue positions passing every filter (None: no filter). Unknown fields and bad values raise."""
        if not filters:
            return None
        keep = np.ones(len(self.category), dtype=bool)
        for name, raw in filters.items():
            values = _values(raw)
            if not values:
                raise SearchError(f"filter {name!r} has no value")
            if name == "category":
                # a path prefix on whole segments: "shoes" matches "shoes > running", not "shoestrings"
                paths = [category_path(category_parts(v)) for v in values]
                keep &= np.logical_or.reduce(
                    [(self.category == v) | np.char.startswith(self.category, f"{v} > ") for v in paths]
                )
            elif name == "brand":
                keep &= np.isin(self.brand, values)
            elif name == "price":
                low, high = _parse_price(raw if isinstance(raw, str) else ",".join(raw))
                keep &= (self.price >= low) & (self.price <= high)
            elif name == "in_stock":
                keep &= self.available == _parse_bool(name, raw if isinstance(raw, str) else raw[0])
            elif name in self.attribute_names:
                column = self._attribute_values(name)
                keep &= np.array([any(v in c.split("\x1f") for v in values) for c in column], dtype=bool)
            else:
                known = ", ".join([*BUILT_IN_FILTERS, *sorted(self.attribute_names)[:MAX_NAMES_IN_ERRORS]])
                raise SearchError(f"unknown filter field {name!r}; known fields: {known}")
        return keep

    def facets(self, positions: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, int]]:
        """Counts of each value of each named field over `positions`, most frequent first."""
        out: dict[str, dict[str, int]] = {}
        for name in names:
            if name == "category":
                values = self.frame["category_path"].to_numpy()[positions]
            elif name == "brand":
                values = self.frame["brand"].to_numpy()[positions]
            elif name == "in_stock":
                values = np.where(self.available[positions], "true", "false")
            elif name in self.attribute_names:
                values = np.array([self.attributes[p].get(name) for p in positions], dtype=object)
                values = np.array([v for x in values for v in (x if isinstance(x, list) else [x])], dtype=object)
            else:
                known = ", ".join([*DEFAULT_FACETS, *sorted(self.attribute_names)[:MAX_NAMES_IN_ERRORS]])
                raise SearchError(f"unknown facet {name!r}; known: {known}")
            counts = Counter(str(v) for v in values if v is not None and str(v) != "")
            out[name] = dict(counts.most_common())
        return out

    def order(self, hits: list[Hit], sort: str, popularity: np.ndarray) -> list[Hit]:
        """`hits` in the order `sort` asks for (relevance: as they are)."""
        if sort == "relevance":
            return hits
        keys: dict[str, np.ndarray] = {
            "price_asc": self.price,
            "price_desc": -self.price,
            "newest": -self.created,
            "popularity": -popularity.astype(np.float64),
        }
        key = keys[sort]
        # unknown values (no price, no date) go last; relevance breaks ties
        return sorted(hits, key=lambda h: (np.isnan(key[h.position]), key[h.position], h.fused_rank))
