"""Search over a built version: answers a query with the ranked (learned or fused), filtered, personalised and
sorted result set, one page of it and facet counts of all of it; item writes since the build are searchable
at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from shopfusion.catalog.schema import Item
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.encoders.base import TextEncoder
from shopfusion.index.lexical import weighted_tokens
from shopfusion.results import ResultItem
from shopfusion.search.explanations import explained_result
from shopfusion.search.filters import DEFAULT_FACETS, CatalogColumns, SearchError
from shopfusion.search.hybrid import Hit, HybridSearcher
from shopfusion.search.indexes import BuiltIndexes
from shopfusion.search.item_writes import ItemWrites
from shopfusion.search.learned import LearnedHit, LearnedSearch
from shopfusion.search.understanding import QueryParser
from shopfusion.settings import SearchSettings

Sort = Literal["relevance", "price_asc", "price_desc", "newest", "popularity"]
SORTS: tuple[str, ...] = get_args(Sort)


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
        cls,
        folder: Path,
        catalog: CatalogSnapshot,
        encoder: TextEncoder,
        settings: SearchSettings,
        root: Path,
        *,
        vectors: np.ndarray | None = None,
        learned: Callable[[HybridSearcher], LearnedSearch | None] | None = None,
    ) -> SearchService:
        """Over the indexes `build` wrote in `folder`; `root` resolves a relative synonyms path (the workspace
        folder). `learned` builds the trained ranking over the loaded searcher (it reads the same indexes)."""
        built = BuiltIndexes.load(folder, settings, root, len(catalog))
        searcher = HybridSearcher(built.lexical, built.vectors, encoder, settings)
        writes = ItemWrites(built.lexical, built.vectors)
        return cls(searcher, catalog, built.popularity, writes, learned(searcher) if learned else None, vectors)

    @property
    def encoder(self) -> TextEncoder:
        """The encoder queries (and written items' texts) are encoded with."""
        return self.searcher.encoder

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
        catalog = self.catalog.with_item(item)
        position = catalog.positions.get_loc(item.item_id)
        tokens = weighted_tokens(item, self.searcher.settings.field_weights)
        return self._written(catalog, self._writes().written(position, tokens, vector))

    def without_item(self, item_id: str) -> SearchService:
        """A copy that never returns `item_id` (itself if it is unknown or deleted already)."""
        position = self.live_position(item_id)
        if position is None:
            return self
        return self._written(self.catalog, self._writes().without(position))

    def _written(self, catalog: CatalogSnapshot, writes: ItemWrites) -> SearchService:
        popularity = np.pad(self.popularity, (0, len(catalog) - len(self.popularity)))
        searcher = writes.searcher(self.searcher, len(catalog))
        return SearchService(searcher, catalog, popularity, writes, self.learned, self.vectors)

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

    # ---- answering a query -------------------------------------------------------------------------------------

    @cached_property
    def columns(self) -> CatalogColumns:
        """The catalogue's filters, facets and sort orders."""
        return CatalogColumns.of(self.catalog.frame)

    @cached_property
    def parser(self) -> QueryParser:
        frame = self.catalog.frame
        return QueryParser.from_catalog(
            frame["title"].fillna("").astype(str).tolist(),
            frame["brand"].tolist(),
            frame["category_path"].tolist(),
            self.columns.attributes,
        )

    def _ranked(self, text: str, mask: np.ndarray | None) -> tuple[list[Hit], dict[int, LearnedHit]]:
        """Hits best first; with the learned ranking also each hit's feature contributions."""
        if self.learned is None or (self.writes is not None and self.writes.changed):
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
        mask = self.columns.mask(applied)
        if self.writes is not None:
            mask = self.writes.live(mask, len(self.catalog))
        hits, learned = self._ranked(understood.text if understood else text, mask)
        hits = self.columns.order(self._personalised(hits, profile), sort, self.popularity)
        start = (page - 1) * k
        positions = np.array([h.position for h in hits], dtype=np.int64)
        return SearchResponse(
            [explained_result(self.catalog, h, learned.get(h.position)) for h in hits[start : start + k]],
            query=text,
            total=len(hits),
            page=page,
            per_page=k,
            sort=sort,
            facets=self.columns.facets(positions, facets or ()),
            understood=None
            if understood is None
            else {"text": understood.text, "filters": understood.filters, "category": understood.category},
        )
