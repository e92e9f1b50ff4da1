"""The Python API: an Engine over a built workspace serving search, recommendations and similar items."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopfusion.encoders import CachedEncoder
from shopfusion.index.lexical import Bm25Index
from shopfusion.index.vector import load_vector_index
from shopfusion.pipeline import make_encoder
from shopfusion.rank.fusion import Fused, fuse
from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sources import CandidateSource, History, ItemKNN
from shopfusion.search.hybrid import HybridSearcher
from shopfusion.workspace import Workspace, WorkspaceError


@dataclass(frozen=True)
class ResultItem:
    item_id: str
    title: str
    price: float | None
    category: str
    score: float
    reason: str
    signals: dict[str, Any] = field(default_factory=dict)


class Engine:
    def __init__(self, ws: Workspace) -> None:
        artifacts = ws.artifacts_dir
        if not (artifacts / "manifest.json").exists():
            raise WorkspaceError(f"{ws.root} has not been built yet: run `shopfusion build --workspace {ws.root}`")
        self.ws = ws
        self.settings = ws.settings
        self.catalog = pd.read_parquet(artifacts / "catalog.parquet")
        self.positions = pd.Index(self.catalog["item_id"])
        with (artifacts / "recommend.pkl").open("rb") as handle:
            bundle = pickle.load(handle)
        self.interactions: Interactions = bundle["interactions"]
        self.sources: dict[str, CandidateSource] = bundle["sources"]
        self._artifacts = artifacts

    @classmethod
    def open(cls, workspace: Path) -> Engine:
        return cls(Workspace.open(workspace))

    @cached_property
    def encoder(self) -> CachedEncoder:
        return make_encoder(self.ws, self.settings)

    @cached_property
    def searcher(self) -> HybridSearcher:
        return HybridSearcher(
            Bm25Index.load(self._artifacts / "lexical"),
            load_vector_index(self._artifacts / "vectors"),
            self.encoder,
            self.settings.search,
        )

    def _result(self, position: int, score: float, reason: str, signals: dict[str, Any]) -> ResultItem:
        row = self.catalog.iloc[position]
        price = None if pd.isna(row["price"]) else float(row["price"])
        return ResultItem(str(row["item_id"]), str(row["title"]), price, str(row["category_path"]), score, reason, signals)

    def search(self, query: str, k: int = 10) -> list[ResultItem]:
        results = []
        for hit in self.searcher.search(query, k):
            matched = [s for s, r in (("keywords", hit.lexical_rank), ("meaning", hit.semantic_rank)) if r]
            reason = "matches the query by " + " and ".join(matched)
            signals = {
                "lexical_score": round(hit.lexical_score, 4),
                "semantic_score": round(hit.semantic_score, 4),
                "lexical_rank": hit.lexical_rank,
                "semantic_rank": hit.semantic_rank,
            }
            results.append(self._result(hit.position, hit.score, reason, signals))
        return results

    def _title(self, position: int) -> str:
        return str(self.catalog.iloc[position]["title"]).strip()

    def _explain(self, fused: Fused) -> str:
        top = max(fused.contributions, key=lambda s: fused.contributions[s])
        because = fused.because.get(top)
        if top == "repeat":
            return "you bought this before"
        if top == "item_knn" and because is not None:
            return f"often bought by people who bought “{self._title(because)}”"
        if top == "item_knn":
            return "often bought together with items like yours"
        return "popular right now"

    def _recommend(self, history: History, k: int, exclude: set[int]) -> list[ResultItem]:
        pool = max(100, 5 * k)
        candidates = {name: source.candidates(history, pool) for name, source in self.sources.items()}
        fused = [f for f in fuse(candidates, self.settings.recommend.source_weights, pool) if f.position not in exclude]
        return [
            self._result(f.position, f.score, self._explain(f), {"contributions": f.contributions}) for f in fused[:k]
        ]

    def recommend_user(self, user_id: str, k: int = 10) -> list[ResultItem]:
        """Known users get their history fused with CF and popularity; unknown users get what is popular."""
        user = self.interactions.user_index(user_id)
        history = History.empty() if user is None else History.of_user(self.interactions, user)
        exclude = set(history.items.tolist()) if self.settings.recommend.exclude_purchased else set()
        return self._recommend(history, k, exclude)

    def recommend_session(self, item_ids: list[str], k: int = 10) -> list[ResultItem]:
        known = [int(p) for p in self.positions.get_indexer(item_ids) if p >= 0]
        return self._recommend(History.of_items(known), k, set(known))

    def similar_items(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Co-interaction neighbours first, then neighbours by text embedding (covers new items)."""
        position = int(self.positions.get_indexer([item_id])[0])
        if position < 0:
            raise KeyError(f"unknown item {item_id!r}")
        results: list[ResultItem] = []
        knn = self.sources.get("item_knn")
        if isinstance(knn, ItemKNN):
            cands = knn.similar(position, k)
            for pos, score in zip(cands.positions, cands.scores, strict=True):
                results.append(self._result(int(pos), float(score), "often bought by the same people", {}))
        if len(results) < k:
            vectors = np.load(self._artifacts / "item_vectors.npy", mmap_mode="r")
            scores = vectors @ np.asarray(vectors[position])
            taken = {r.item_id for r in results} | {item_id}
            for pos in np.argsort(-scores)[: 3 * k]:
                pos = int(pos)
                if len(results) >= k:
                    break
                if self.catalog.iloc[pos]["item_id"] not in taken:
                    results.append(self._result(pos, float(scores[pos]), "similar description", {}))
        return results[:k]
