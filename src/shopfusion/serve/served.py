"""One consistent view a request answers from: a loaded model version, the item writes since its build over
its search indexes, and what its users did since."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from shopfusion.catalog.schema import Item
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.engine import Engine
from shopfusion.results import ResultItem
from shopfusion.search.service import SearchResponse, SearchService
from shopfusion.serve.live import LiveHistories

ItemWrite = tuple[Item, np.ndarray] | str  # an item written with its text embedding, or a deleted item's id


@dataclass(frozen=True)
class Served:
    """One consistent view for a request: a loaded engine, the item writes since its build and its users'
    events since (`live`, shared by every view of the engine). Search answers from indexes with the writes
    applied; recommendation models know only the built catalogue, so their results drop items deleted since
    and show changed items as they are now."""

    engine: Engine
    search_service: SearchService
    live: LiveHistories
    changed: frozenset[str] = field(default_factory=frozenset)  # ids written or deleted since the build

    @classmethod
    def of(cls, engine: Engine, live: LiveHistories) -> Served:
        return cls(engine, engine.search_service, live)

    @property
    def catalog(self) -> CatalogSnapshot:
        return self.search_service.catalog

    @property
    def item_count(self) -> int:
        writes = self.search_service.writes
        return len(self.catalog) - (len(writes.deleted) if writes else 0)

    def position(self, item_id: str) -> int | None:
        """The item's catalogue position; None if it is unknown or deleted."""
        return self.search_service.live_position(item_id)

    def apply(self, write: ItemWrite) -> Served:
        if isinstance(write, str):
            return Served(self.engine, self.search_service.without_item(write), self.live, self.changed | {write})
        item, vector = write
        search = self.search_service.with_item(item, vector)
        return Served(self.engine, search, self.live, self.changed | {item.item_id})

    def _current(self, recommend: Callable[[int], list[ResultItem]], k: int) -> list[ResultItem]:
        """Ask for k more than the number of deleted items, drop those and show changed ones as they are now."""
        writes = self.search_service.writes
        results = recommend(k + (len(writes.deleted) if writes else 0))
        out = []
        for result in results:
            if result.item_id in self.changed:
                position = self.position(result.item_id)
                if position is None:
                    continue
                result = self.catalog.result(position, result.score, result.reason, result.signals)
            out.append(result)
        return out[:k]

    def search(
        self,
        query: str,
        k: int,
        *,
        filters: Mapping[str, str | Sequence[str]],
        sort: str = "relevance",
        page: int = 1,
        facets: Sequence[str],
        user_id: str | None = None,
        session: Sequence[str] = (),
    ) -> SearchResponse:
        """Search with the item writes applied, personalised by the recent items of the user (a stored key) and
        of the session; raises SearchError for a request it cannot answer."""
        profile = self.engine.profile(user_id, session, live=self.live.of(user_id) if user_id else None)
        return self.search_service.search(
            query, k, filters=filters, sort=sort, page=page, facets=facets, profile=profile
        )

    def recommend_user(self, user_id: str, k: int = 10) -> list[ResultItem]:
        live = self.live.of(user_id)
        return self._current(lambda n: self.engine.recommend_user(user_id, n, live=live), k)

    def recommend_session(self, item_ids: list[str], k: int = 10) -> list[ResultItem]:
        return self._current(lambda n: self.engine.recommend_session(item_ids, n), k)

    def _is_new(self, item_id: str) -> bool:
        return self.engine.catalog.position(item_id) is None

    def similar_items(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Raises KeyError for an unknown or deleted item; an item added since the build gets its nearest
        items by text."""
        if self.position(item_id) is None:
            raise KeyError(f"unknown item {item_id!r}")
        if self._is_new(item_id):
            return self.search_service.similar_to_written(item_id, k)
        return self._with_added(item_id, self._current(lambda n: self.engine.similar_items(item_id, n), k), k)

    def _with_added(self, item_id: str, results: list[ResultItem], k: int) -> list[ResultItem]:
        """Items created since the build join a built item's similar items by text: each goes in before the
        first neighbour whose text is less close to the item than its own (and so pushes out the last)."""
        service, anchor_position, added = (
            self.search_service,
            self.position(item_id),
            self.search_service.added_since_build(),
        )
        anchor = service.text_vector(anchor_position) if anchor_position is not None and added else None
        if anchor_position is None or anchor is None:
            return results

        def closeness(position: int | None) -> float:
            vector = service.text_vector(position) if position is not None else None
            return float(vector @ anchor) if vector is not None else -1.0

        merged = [(closeness(self.position(r.item_id)), r) for r in results]
        reason = f"new, similar to “{self.catalog.title(anchor_position)}”"
        for position in added:
            similarity = closeness(position)
            at = next((i for i, (c, _) in enumerate(merged) if c < similarity), len(merged))
            if at < k:
                score = merged[min(at, len(merged) - 1)][1].score if merged else 0.0
                signals = {"surface": "item", "content_score": round(similarity, 4), "added_since_build": True}
                merged.insert(at, (similarity, self.catalog.result(position, score, reason, signals)))
        return [r for _, r in merged[:k]]

    def complements(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Raises KeyError for an unknown or deleted item; an item added since the build has none yet."""
        if self.position(item_id) is None:
            raise KeyError(f"unknown item {item_id!r}")
        if self._is_new(item_id):
            return []
        return self._current(lambda n: self.engine.complements(item_id, n), k)
