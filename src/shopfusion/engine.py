"""The Python API: an Engine over a built workspace serving search, recommendations and similar items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.pipeline import VECTORS_FILE, make_encoder, read_manifest
from shopfusion.recommend.service import RecommendService
from shopfusion.results import ResultItem
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
        return SearchService.load(
            self.artifacts / "search", self.catalog, cached.encoder, self.settings.search, self.ws.root
        )

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
    ) -> SearchResponse:
        """Hybrid search; raises SearchError (a ValueError) with the reason for a request it cannot answer."""
        return self.search_service.search(query, k, filters=filters, sort=sort, page=page, facets=facets)

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
