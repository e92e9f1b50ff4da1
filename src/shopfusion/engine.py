"""The Python API: an Engine over a built workspace serving search, recommendations and similar items."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.pipeline import VECTORS_FILE, make_encoder, read_manifest
from shopfusion.recommend.service import RecommendService
from shopfusion.results import ResultItem
from shopfusion.search.service import SearchService
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
        encoder = make_encoder(self.ws, self.settings)
        return SearchService.load(self.artifacts / "search", self.catalog, encoder, self.settings.search)

    @cached_property
    def recommend_service(self) -> RecommendService:
        return RecommendService.load(self.artifacts / "recommend", self.catalog, self.vectors, self.settings.recommend)

    def search(self, query: str, k: int = 10) -> list[ResultItem]:
        return self.search_service.search(query, k)

    def recommend_user(self, user_id: str, k: int = 10) -> list[ResultItem]:
        return self.recommend_service.recommend_user(user_id, k)

    def recommend_session(self, item_ids: list[str], k: int = 10) -> list[ResultItem]:
        return self.recommend_service.recommend_session(item_ids, k)

    def similar_items(self, item_id: str, k: int = 10) -> list[ResultItem]:
        return self.recommend_service.similar_items(item_id, k)
