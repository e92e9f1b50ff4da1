"""The Python API: an Engine over a built workspace serving search, recommendations and similar items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from shopfusion.build.artifacts import (
    RECOMMEND_DIR,
    SEARCH_DIR,
    VECTORS_FILE,
    item_texts,
    make_encoder,
    read_manifest,
    trained_search_dir,
)
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.catalog.store import EVENTS_WATERMARK, ITEMS_WATERMARK
from shopfusion.encoders import CachedEncoder, EmbeddingCache
from shopfusion.encoders.base import TextEncoder
from shopfusion.recommend.service import LiveHistory, RecommendService
from shopfusion.results import ResultItem
from shopfusion.search.hybrid import HybridSearcher
from shopfusion.search.learned import LearnedSearch
from shopfusion.search.ltr_features import Tuned
from shopfusion.search.service import DEFAULT_FACETS, SearchResponse, SearchService
from shopfusion.search.trained_files import fine_tuned_bi_encoder, load_learned, serves_learned, tuned_index
from shopfusion.workspace import MANIFEST_FILE, Workspace, WorkspaceError


class Engine:
    """The served model version of a workspace (what CURRENT names when it is created)."""

    def __init__(self, ws: Workspace) -> None:
        self.artifacts = ws.artifacts_dir
        if not (self.artifacts / MANIFEST_FILE).exists():
            raise WorkspaceError(f"{ws.root} has not been built yet: run `shopfusion build --workspace {ws.root}`")
        self.ws = ws
        self.settings = ws.settings
        self.manifest = read_manifest(self.artifacts)
        self.catalog = CatalogSnapshot.load(self.artifacts)
        self.vectors = np.load(self.artifacts / VECTORS_FILE)

    @classmethod
    def open(cls, workspace: Path) -> Engine:
        return cls(Workspace.open(workspace))

    @property
    def items_read_upto(self) -> int:
        """How far into the store's writes this version's build read items: later writes are not in it
        (0 for a version built before the store numbered its writes)."""
        return self._watermark(ITEMS_WATERMARK)

    @property
    def events_read_upto(self) -> int:
        """As `items_read_upto`, for the events (and erasures) its recommenders were fitted on."""
        return self._watermark(EVENTS_WATERMARK)

    def _watermark(self, key: str) -> int:
        value = self.manifest.get(key)
        return value if isinstance(value, int) else 0

    @cached_property
    def encoder(self) -> TextEncoder:
        """The text encoder this version's items were embedded with. Queries skip the persistent embedding
        cache (a disk write per new query); the searcher keeps recent query vectors in memory instead."""
        cached = make_encoder(self.ws, self.settings)
        cached.cache.close()
        return cached.encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Item texts embedded as a build embeds them, through the workspace's embedding cache (so the next
        build, and the next load of a version, reuse the vectors)."""
        cached = CachedEncoder(self.encoder, EmbeddingCache(self.ws.embedding_cache_path))
        try:
            return cached.encode(list(texts))
        finally:
            cached.cache.close()

    @cached_property
    def search_service(self) -> SearchService:
        return SearchService.load(
            self.artifacts / SEARCH_DIR,
            self.catalog,
            self.encoder,
            self.settings.search,
            self.ws.root,
            vectors=self.vectors,
            learned=self._learned_search,
        )

    def _learned_search(self, searcher: HybridSearcher) -> LearnedSearch | None:
        """What `train search` left in the workspace, over this build's catalogue (None: untrained, or not
        better than the untrained blend)."""
        folder = trained_search_dir(self.ws)
        if not serves_learned(folder):
            return None
        tuned = None
        bi_encoder = fine_tuned_bi_encoder(folder)
        if bi_encoder is not None:
            cached = make_encoder(self.ws, self.settings, str(bi_encoder))  # only new items encoded
            index = tuned_index(folder, self.item_texts, cached, self.settings.search.exact_vector_max_items)
            cached.cache.close()
            tuned = Tuned(cached.encoder, index)
        frame = self.catalog.frame
        return load_learned(
            folder,
            searcher,
            frame["item_id"].astype(str).tolist(),
            frame["title"].fillna("").astype(str).tolist(),
            self.item_texts,
            tuned,
            self.settings.search.training,
        )

    @cached_property
    def item_texts(self) -> list[str]:
        return item_texts(self.artifacts, self.catalog)

    def profile(
        self,
        user_id: str | None = None,
        session: Sequence[str] = (),
        recent: int = 10,
        *,
        live: LiveHistory | None = None,
    ) -> list[int]:
        """Catalogue positions of the shopper's most recent items (session items last), for personalised search;
        `live`: the user's events since the build (see `RecommendService.history_of`)."""
        positions: list[int] = []
        if user_id:
            history = self.recommend_service.history_of(user_id, live)
            order = np.argsort(-history.recency, kind="stable")[:recent]
            positions.extend(int(p) for p in history.items[order])
        positions.extend(p for p in (self.catalog.position(i) for i in session) if p is not None)
        return positions[-recent:]

    @cached_property
    def recommend_service(self) -> RecommendService:
        return RecommendService.load(
            self.artifacts / RECOMMEND_DIR, self.catalog, self.vectors, self.settings.recommend
        )

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

    def recommend_user(
        self, user_id: str, k: int = 10, *, category: str | None = None, live: LiveHistory | None = None
    ) -> list[ResultItem]:
        """Unknown users get trending/popular items (within `category` if given); k < 1 raises ValueError.
        `live`: the user's events since the build, counted at once."""
        return self.recommend_service.recommend_user(user_id, k, category=category, live=live)

    def recommend_session(self, item_ids: list[str], k: int = 10, *, category: str | None = None) -> list[ResultItem]:
        """Unknown item ids in the session are ignored; an empty session is a cold start."""
        return self.recommend_service.recommend_session(item_ids, k, category=category)

    def similar_items(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Raises KeyError for an unknown item."""
        return self.recommend_service.similar_items(item_id, k)

    def complements(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """'Frequently bought together' with an item; raises KeyError for an unknown item."""
        return self.recommend_service.complements(item_id, k)
