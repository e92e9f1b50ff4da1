"""Search over a built workspace: builds its indexes at `build` time, answers queries at serve time with
filters, facets, sorting and pagination over the fused result set."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from shopfusion.catalog.schema import Item, category_parts, category_path
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.encoders.base import TextEncoder
from shopfusion.index.lexical import Bm25Index, LiveLexicalIndex, weighted_tokens
from shopfusion.index.synonyms import Synonyms
from shopfusion.index.vector import BuiltVectorIndex, LiveVectorIndex, build_vector_index, load_vector_index
from shopfusion.results import ResultItem
from shopfusion.search.hybrid import Hit, HybridSearcher
from shopfusion.search.learned import LearnedHit, LearnedSearch
from shopfusion.search.understanding import QueryParser
from shopfusion.settings import SearchSettings

Sort = Literal["relevance", "price_asc", "price_desc", "newest", "popularity"]
SORTS: tuple[str, ...] = get_args(Sort)
BUILT_IN_FILTERS = ("category", "brand", "price", "in_stock")
DEFAULT_FACETS = ("category", "brand", "in_stock")
POPULARITY_FILE = "popularity.npy"
MAX_NAMES_IN_ERRORS = 30
_TRUE, _FALSE = {"1", "true", "yes", "y"}, {"0", "false", "no", "n"}


class SearchError(ValueError):
    """A request the engine cannot answer as asked (empty query, unknown filter, bad range): say why."""


def build_search_artifacts(
    items: list[Item], vectors: np.ndarray, settings: SearchSettings, folder: Path, events: pd.DataFrame | None = None
) -> str:
    """Write the lexical and vector indexes and item popularity (event counts) into `folder`; returns the vector
    index kind."""
    lexical = Bm25Index.build([weighted_tokens(i, settings.field_weights) for i in items])
    vector_index = build_vector_index(vectors, settings.exact_vector_max_items)
    lexical.save(folder / "lexical")
    vector_index.save(folder / "vectors")
    counts = events["item_id"].value_counts() if events is not None and len(events) else pd.Series(dtype=float)
    popularity = counts.reindex([i.item_id for i in items]).fillna(0).to_numpy(dtype=np.float32)
    np.save(folder / POPULARITY_FILE, popularity)
    return type(vector_index).__name__


class SearchResponse(list[ResultItem]):
    """One page of results (the list itself) with the total matched, the page, and facet counts of the whole
    matched set. A list so that callers wanting only the results need nothing else."""

    def __init__(
        self,
        results: Sequence[ResultItem],
        *,
        query: str,
        total: int,
        page: int,
        per_page: int,
        sort: str,
        facets: dict[str, dict[str, int]],
        understood: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(results)
        self.understood = understood
        self.query = query
        self.total = total
        self.page = page
        self.per_page = per_page
        self.sort_by = sort
        self.facets = facets

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "sort": self.sort_by,
            "results": [asdict(r) for r in self],
            "facets": self.facets,
            "understood": self.understood,
        }


@dataclass(frozen=True)
class _Columns:
    """Catalogue columns as arrays, in index order, for vectorised filters, facets and sorting."""

    category: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    available: np.ndarray
    created: np.ndarray
    attributes: list[dict[str, Any]] = field(repr=False)


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
class ItemWrites:
    """Items written or deleted since the build, over the built indexes, until the next build merges them:
    the tokens and vector of each written catalogue position, and the deleted positions."""

    lexical: Bm25Index
    vectors: BuiltVectorIndex
    documents: Mapping[int, list[str]] = field(default_factory=dict)
    embeddings: Mapping[int, np.ndarray] = field(default_factory=dict)
    deleted: frozenset[int] = frozenset()


class SearchService:
    def __init__(
        self,
        searcher: HybridSearcher,
        catalog: CatalogSnapshot,
        popularity: np.ndarray,
        writes: ItemWrites | None = None,
        learned: LearnedSearch | None = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        """`writes`: the built indexes with the item writes since, needed by `with_item`/`without_item`.
        `learned`: the trained ranking (`train search`), used while no item was written since the build.
        `vectors`: item text embeddings, for personalisation by a shopper's recent items."""
        self.searcher = searcher
        self.catalog = catalog
        self.popularity = popularity
        self.writes = writes
        self.learned = learned
        self.vectors = vectors

    @classmethod
    def load(
        cls, folder: Path, catalog: CatalogSnapshot, encoder: TextEncoder, settings: SearchSettings, root: Path
    ) -> SearchService:
        """`root` resolves a relative synonyms path (the workspace folder)."""
        synonyms = Synonyms.load(root / settings.synonyms_path if settings.synonyms_path else None)
        lexical, vectors = Bm25Index.load(folder / "lexical", synonyms), load_vector_index(folder / "vectors")
        searcher = HybridSearcher(lexical, vectors, encoder, settings)
        popularity_file = folder / POPULARITY_FILE
        popularity = np.load(popularity_file) if popularity_file.exists() else np.zeros(len(catalog), np.float32)
        return cls(searcher, catalog, popularity, ItemWrites(lexical, vectors))

    # ---- item writes without a rebuild -----------------------------------------------------------------------

    def _writes(self) -> ItemWrites:
        if self.writes is None:
            raise TypeError("item writes need a SearchService loaded from built indexes (SearchService.load)")
        return self.writes

    def live_position(self, item_id: str) -> int | None:
        """The item's catalogue position, None if it is unknown or deleted since the build."""
        position = self.catalog.position(item_id)
        if position is None or (self.writes is not None and position in self.writes.deleted):
            return None
        return position

    def with_item(self, item: Item, vector: np.ndarray) -> SearchService:
        """A copy that answers with `item` as written (new, or replacing the built one): searchable by keywords
        and meaning, filterable and faceted from the next query. `vector`: the item's text embedding."""
        writes = self._writes()
        catalog = self.catalog.with_item(item)
        position = catalog.positions.get_loc(item.item_id)
        tokens = weighted_tokens(item, self.searcher.settings.field_weights)
        return self._written(
            catalog,
            replace(
                writes,
                documents={**writes.documents, position: tokens},
                embeddings={**writes.embeddings, position: vector},
                deleted=writes.deleted - {position},
            ),
        )

    def without_item(self, item_id: str) -> SearchService:
        """A copy that never returns `item_id` (itself if it is unknown or deleted already)."""
        position = self.live_position(item_id)
        if position is None:
            return self
        writes = self._writes()
        documents = {p: d for p, d in writes.documents.items() if p != position}
        embeddings = {p: v for p, v in writes.embeddings.items() if p != position}
        deleted = writes.deleted | {position}
        return self._written(self.catalog, replace(writes, documents=documents, embeddings=embeddings, deleted=deleted))

    def _written(self, catalog: CatalogSnapshot, writes: ItemWrites) -> SearchService:
        lexical = LiveLexicalIndex(writes.lexical, len(catalog), writes.documents)
        vectors = LiveVectorIndex(writes.vectors, len(catalog), writes.embeddings)
        popularity = np.pad(self.popularity, (0, len(catalog) - len(self.popularity)))
        searcher = self.searcher.with_indexes(lexical, vectors)
        return SearchService(searcher, catalog, popularity, writes, self.learned, self.vectors)

    def _live(self, mask: np.ndarray | None) -> np.ndarray | None:
        """`mask` without the items deleted since the build."""
        if self.writes is None or not self.writes.deleted:
            return mask
        live = np.ones(len(self.catalog), dtype=bool) if mask is None else mask.copy()
        live[list(self.writes.deleted)] = False
        return live

    def text_vector(self, position: int) -> np.ndarray | None:
        """The item's text embedding as it is now (written since the build, else built); None if unknown."""
        written = self.writes.embeddings.get(position) if self.writes is not None else None
        if written is not None:
            return written
        return self.vectors[position] if self.vectors is not None and position < len(self.vectors) else None

    def added_since_build(self) -> list[int]:
        """Positions of the items created since the build (those no recommendation model knows)."""
        built = len(self.vectors) if self.vectors is not None else len(self.catalog)
        return [p for p in (self.writes.embeddings if self.writes is not None else {}) if p >= built]

    def similar_to_written(self, item_id: str, k: int) -> list[ResultItem]:
        """Items nearest in text to one written since the build (which no recommendation model knows yet);
        raises KeyError for any other item."""
        position = self.live_position(item_id)
        vector = self._writes().embeddings.get(position) if position is not None else None
        if position is None or vector is None:
            raise KeyError(f"{item_id!r} was not written since the build")
        mask = np.ones(len(self.catalog), dtype=bool)
        mask[[*self._writes().deleted, position]] = False
        nearest = self.searcher.nearest(vector, mask)
        reason = f"similar to “{self.catalog.title(position)}”"
        return [
            self.catalog.result(p, round(s, 6), reason, {"surface": "item", "content_score": round(s, 4)})
            for p, s in zip(nearest.positions[:k].tolist(), nearest.scores[:k].tolist(), strict=True)
        ]

    @cached_property
    def _columns(self) -> _Columns:
        frame = self.catalog.frame
        created = pd.to_datetime(frame["created_at"], utc=True, errors="coerce")
        return _Columns(
            category=frame["category_path"].fillna("").str.lower().to_numpy(dtype=str),
            brand=frame["brand"].fillna("").str.lower().to_numpy(dtype=str),
            price=pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=np.float64),
            available=frame["available"].fillna(True).to_numpy(dtype=bool),
            created=created.map(lambda t: t.timestamp() if pd.notna(t) else -np.inf).to_numpy(dtype=np.float64),
            attributes=[json.loads(a) if a else {} for a in frame["attributes"]],
        )

    @cached_property
    def attribute_names(self) -> frozenset[str]:
        return frozenset(name for attrs in self._columns.attributes for name in attrs)

    def _attribute_values(self, name: str) -> np.ndarray:
        def text(value: Any) -> str:
            if isinstance(value, list):
                return "\x1f".join(str(v).lower() for v in value)
            return "" if value is None else str(value).lower()

        return np.array([text(a.get(name)) for a in self._columns.attributes], dtype=object)

    def mask(self, filters: Mapping[str, str | Sequence[str]]) -> np.ndarray | None:
        """Catalogue positions passing every filter (None: no filter). Unknown fields and bad values raise."""
        if not filters:
            return None
        cols = self._columns
        keep = np.ones(len(self.catalog), dtype=bool)
        for name, raw in filters.items():
            values = _values(raw)
            if not values:
                raise SearchError(f"filter {name!r} has no value")
            if name == "category":
                # a path prefix on whole segments: "shoes" matches "shoes > running", not "shoestrings"
                paths = [category_path(category_parts(v)) for v in values]
                keep &= np.logical_or.reduce(
                    [(cols.category == v) | np.char.startswith(cols.category, f"{v} > ") for v in paths]
                )
            elif name == "brand":
                keep &= np.isin(cols.brand, values)
            elif name == "price":
                low, high = _parse_price(raw if isinstance(raw, str) else ",".join(raw))
                keep &= (cols.price >= low) & (cols.price <= high)
            elif name == "in_stock":
                keep &= cols.available == _parse_bool(name, raw if isinstance(raw, str) else raw[0])
            elif name in self.attribute_names:
                column = self._attribute_values(name)
                keep &= np.array([any(v in c.split("\x1f") for v in values) for c in column], dtype=bool)
            else:
                known = ", ".join([*BUILT_IN_FILTERS, *sorted(self.attribute_names)[:MAX_NAMES_IN_ERRORS]])
                raise SearchError(f"unknown filter field {name!r}; known fields: {known}")
        return keep

    def _facets(self, positions: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, int]]:
        frame = self.catalog.frame
        out: dict[str, dict[str, int]] = {}
        for name in names:
            if name == "category":
                values = frame["category_path"].to_numpy()[positions]
            elif name == "brand":
                values = frame["brand"].to_numpy()[positions]
            elif name == "in_stock":
                values = np.where(self._columns.available[positions], "true", "false")
            elif name in self.attribute_names:
                values = np.array([self._columns.attributes[p].get(name) for p in positions], dtype=object)
                values = np.array([v for x in values for v in (x if isinstance(x, list) else [x])], dtype=object)
            else:
                raise SearchError(
                    f"unknown facet {name!r}; known: {', '.join([*DEFAULT_FACETS, *sorted(self.attribute_names)[:MAX_NAMES_IN_ERRORS]])}"
                )
            counts = Counter(str(v) for v in values if v is not None and str(v) != "")
            out[name] = dict(counts.most_common())
        return out

    def _order(self, hits: list[Hit], sort: str) -> list[Hit]:
        if sort == "relevance":
            return hits
        cols = self._columns
        keys: dict[str, np.ndarray] = {
            "price_asc": cols.price,
            "price_desc": -cols.price,
            "newest": -cols.created,
            "popularity": -self.popularity.astype(np.float64),
        }
        key = keys[sort]
        # unknown values (no price, no date) go last; relevance breaks ties
        return sorted(hits, key=lambda h: (np.isnan(key[h.position]), key[h.position], h.fused_rank))

    @cached_property
    def parser(self) -> QueryParser:
        frame = self.catalog.frame
        return QueryParser.from_catalog(
            frame["title"].fillna("").astype(str).tolist(),
            frame["brand"].tolist(),
            frame["category_path"].tolist(),
            self._columns.attributes,
        )

    def _ranked(self, text: str, mask: np.ndarray | None) -> tuple[list[Hit], dict[int, LearnedHit]]:
        """Hits best first; with the learned ranking also each hit's feature contributions."""
        written = self.writes is not None and (self.writes.documents or self.writes.embeddings)
        if self.learned is None or written:
            return self.searcher.search(text, None, mask), {}
        learned = self.learned.rank(text, None, mask)
        hits = [Hit(h.position, h.score, 0.0, 0.0, None, None, rank) for rank, h in enumerate(learned, 1)]
        return hits, {h.position: h for h in learned}

    def _personalised(self, hits: list[Hit], profile: Sequence[int]) -> list[Hit]:
        """Hits re-scored by closeness to the shopper's recent items: score × (1 + weight × cosine), so the
        boost follows the shopper without overturning clearly better matches."""
        weight = self.searcher.settings.personalisation_weight
        recent = [p for p in profile if 0 <= p < len(self.catalog)]
        if not hits or not recent or weight == 0 or self.vectors is None:
            return hits
        centre = self.vectors[recent].mean(axis=0)
        centre = centre / max(float(np.linalg.norm(centre)), 1e-9)
        positions = np.array([h.position for h in hits if h.position < len(self.vectors)], dtype=np.int64)
        affinity = dict(zip(positions.tolist(), (self.vectors[positions] @ centre).tolist(), strict=True))
        low = min(h.score for h in hits)
        rescored = [
            replace(h, score=(h.score - low + 1e-9) * (1 + weight * max(affinity.get(h.position, 0.0), 0.0)))
            for h in hits
        ]
        return sorted(rescored, key=lambda h: (-h.score, h.fused_rank))

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        filters: Mapping[str, str | Sequence[str]] | None = None,
        sort: str = "relevance",
        page: int = 1,
        facets: Sequence[str] | None = DEFAULT_FACETS,
        profile: Sequence[int] = (),
    ) -> SearchResponse:
        """Page `page` (k per page) of the ranked, filtered result set, sorted as asked, with facet counts.

        The query is understood first (price bounds, brands and attribute values become filters unless the
        caller set that filter); `profile`: catalogue positions of the shopper's recent items, to personalise."""
        text = query.strip()
        if not text:
            raise SearchError("empty query: type what you are looking for")
        limit = self.searcher.settings.max_query_chars
        if len(text) > limit:
            raise SearchError(f"query is {len(text)} characters long; the limit is {limit}")
        if sort not in SORTS:
            raise SearchError(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
        if k < 1 or page < 1:
            raise SearchError("k and page must be at least 1")
        understood = self.parser.parse(text) if self.searcher.settings.understand_queries else None
        applied = dict(filters or {})
        if understood is not None:
            applied = {**understood.filters, **applied}
        hits, learned = self._ranked(understood.text if understood else text, self._live(self.mask(applied)))
        hits = self._order(self._personalised(hits, profile), sort)
        start = (page - 1) * k
        positions = np.array([h.position for h in hits], dtype=np.int64)
        return SearchResponse(
            [self._result(h, learned.get(h.position)) for h in hits[start : start + k]],
            query=text,
            total=len(hits),
            page=page,
            per_page=k,
            sort=sort,
            facets=self._facets(positions, facets or ()),
            understood=None
            if understood is None
            else {"text": understood.text, "filters": understood.filters, "category": understood.category},
        )

    def _result(self, hit: Hit, learned: LearnedHit | None = None) -> ResultItem:
        if learned is not None:
            top = sorted(learned.contributions.items(), key=lambda kv: -abs(kv[1]))[:5]
            signals: dict[str, Any] = {name: round(value, 4) for name, value in top}
            return self.catalog.result(hit.position, hit.score, learned.reason(), {"ranker": "learned", **signals})
        matched = [s for s, r in (("keywords", hit.lexical_rank), ("meaning", hit.semantic_rank)) if r]
        signals = {
            "ranker": "fusion",
            "lexical_score": round(hit.lexical_score, 4),
            "semantic_score": round(hit.semantic_score, 4),
            "lexical_rank": hit.lexical_rank,
            "semantic_rank": hit.semantic_rank,
            "fused_rank": hit.fused_rank,
        }
        reason = "matches the query by " + " and ".join(matched)
        return self.catalog.result(hit.position, hit.score, reason, signals)
