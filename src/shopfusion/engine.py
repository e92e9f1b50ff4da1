"""The Python API: an Engine over a built workspace serving search, recommendations and similar items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.pipeline import VECTORS_FILE, item_texts, make_encoder, read_manifest, trained_search_dir
from shopfusion.recommend.service import RecommendService
from shopfusion.results import ResultItem
from shopfusion.search.learned import BI_ENCODER_DIR, LearnedSearch, Tuned, load_learned, tuned_index
from shopfusion.search.service import DEFAULT_FACETS, SearchResponse, SearchService
from shopfusion.workspace import Workspace, WorkspaceError


class Engine:
    def __init__(self, ws: Workspace) -> None:
        self.artifacts = ws.artifacts_dir
        if not (self.artifacts / "manifest.json").exists():
            raise WorkspaceError(f"{ws.root} has not been built yet: run `shopfusion build --workspace {ws.root}`")
        self.ws = ws
        self.settings = ws.settings
        self.catalog = CatalogSnapshot.load(self.artifacts)
        self.vectors = np.load(self.artifacts / VECTORS_FILE)

    @classmethod
    def open(cls, workspace: Path) -> Engine:
        return cls(Workspace.open(workspace))

    @property
    def manifest(self) -> dict[str, object]:
        return read_manifest(self.artifacts)

    @cached_property
    def search_service(self) -> SearchService:
        # Queries skip the persistent embedding cache (a disk write per new query); the searcher keeps recent
        # query vectors in memory instead.
        cached = make_encoder(self.ws, self.settings)
        cached.cache.close()
        service = SearchService.load(
            self.artifacts / "search", self.catalog, cached.encoder, self.settings.search, self.ws.root
        )
        service.vectors = self.vectors
        service.learned = self._learned_search(service)
        return service

    def _learned_search(self, service: SearchService) -> LearnedSearch | None:
        """The pipeline `train search` left in the workspace, over this build's catalogue (None: untrained)."""
        folder = trained_search_dir(self.ws)
        if not (folder / BI_ENCODER_DIR).exists() and not (folder / "report.json").exists():
            return None
        tuned = None
        if (folder / BI_ENCODER_DIR).exists():
            cached = make_encoder(self.ws, self.settings, str(folder / BI_ENCODER_DIR))  # only new items encoded
            index = tuned_index(folder, self.item_texts, cached, self.settings.search.exact_vector_max_items)
            cached.cache.close()
            tuned = Tuned(cached.encoder, index)
        frame = self.catalog.frame
        return load_learned(
            folder,
            service.searcher,
            frame["item_id"].astype(str).tolist(),
            frame["title"].fillna("").astype(str).tolist(),
            self.item_texts,
            tuned,
            self.settings.search.training,
        )

    @cached_property
    def item_texts(self) -> list[str]:
        return item_texts(self.artifacts, self.catalog)

    def profile(self, user_id: str | None = None, session: Sequence[str] = (), recent: int = 10) -> list[int]:
        """Catalogue positions of the shopper's most recent items (session items last), for personalised search."""
        positions: list[int] = []
        if user_id:
            history = self.recommend_service.history_of(user_id)
            order = np.argsort(-history.recency, kind="stable")[:recent]
            positions.extend(int(p) for p in history.items[order])
        positions.extend(p for p in (self.catalog.position(i) for i in session) if p is not None)
        return positions[-recent:]

    @cached_property
    def recommend_service(self) -> RecommendService:
        return RecommendService.load(self.artifacts / "recommend", self.catalog, self.vectors, self.settings.recommend)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        filters: Mapping[str, str | Sequence[str]] | None = None,
        sort: str = "relevance",
        page: int = 1,
        facets: Sequence[str] | None = DEFAULT_FACETS,
        user_id: str | None = None,
        session: Sequence[str] = (),
    ) -> SearchResponse:
        """Search (learned when trained, hybrid otherwise), personalised by the user's or session's recent items;
        raises SearchError (a ValueError) with the reason for a request it cannot answer."""
        return self.search_service.search(
            query, k, filters=filters, sort=sort, page=page, facets=facets, profile=self.profile(user_id, session)
        )

    def recommend_user(self, user_id: str, k: int = 10, *, category: str | None = None) -> list[ResultItem]:
        """Unknown users get trending/popular items (within `category` if given); k < 1 raises ValueError."""
        return self.recommend_service.recommend_user(user_id, k, category=category)

    def recommend_session(self, item_ids: list[str], k: int = 10, *, category: str | None = None) -> list[ResultItem]:
        """Unknown item ids in the session are ignored; an empty session is a cold start."""
        return self.recommend_service.recommend_session(item_ids, k, category=category)

    def similar_items(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Raises KeyError for an unknown item."""
        return self.recommend_service.similar_items(item_id, k)

    def complements(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """'Frequently bought together' with an item; raises KeyError for an unknown item."""
        return self.recommend_service.complements(item_id, k)
