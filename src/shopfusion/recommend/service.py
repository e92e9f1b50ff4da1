"""Recommendations over a built workspace: fits candidate sources at `build`, fuses them at serve time."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd

from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.rank.fusion import Fused, fuse
from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sources import CandidateSource, History, ItemKNN, Popularity, RepeatPurchase
from shopfusion.results import ResultItem
from shopfusion.settings import RecommendSettings

MODEL_FILE = "recommend.pkl"


class RecommendService:
    def __init__(
        self,
        catalog: CatalogSnapshot,
        vectors: np.ndarray,
        settings: RecommendSettings,
        interactions: Interactions,
        sources: dict[str, CandidateSource],
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.settings = settings
        self.interactions = interactions
        self.sources = sources

    @classmethod
    def fit(
        cls, catalog: CatalogSnapshot, events: pd.DataFrame, vectors: np.ndarray, settings: RecommendSettings
    ) -> Self:
        interactions = Interactions.from_events(events, catalog.frame["item_id"].to_numpy(dtype=object))
        sources: dict[str, CandidateSource] = {
            "popularity": Popularity(settings.popularity_half_life_days).fit(interactions),
            "repeat": RepeatPurchase().fit(interactions),
            "item_knn": ItemKNN().fit(interactions),
        }
        return cls(catalog, vectors, settings, interactions, sources)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / MODEL_FILE).open("wb") as handle:
            pickle.dump({"interactions": self.interactions, "sources": self.sources}, handle)

    @classmethod
    def load(cls, folder: Path, catalog: CatalogSnapshot, vectors: np.ndarray, settings: RecommendSettings) -> Self:
        with (folder / MODEL_FILE).open("rb") as handle:
            bundle = pickle.load(handle)
        return cls(catalog, vectors, settings, bundle["interactions"], bundle["sources"])

    def _explain(self, fused: Fused) -> str:
        top = max(fused.contributions, key=lambda s: fused.contributions[s])
        because = fused.because.get(top)
        if top == "repeat":
            return "you bought this before"
        if top == "item_knn" and because is not None:
            return f"often bought by people who bought “{self.catalog.title(because)}”"
        if top == "item_knn":
            return "often bought together with items like yours"
        return "popular right now"

    def _recommend(self, history: History, k: int, exclude: set[int]) -> list[ResultItem]:
        pool = max(100, 5 * k)
        candidates = {name: source.candidates(history, pool) for name, source in self.sources.items()}
        fused = [f for f in fuse(candidates, self.settings.source_weights, pool) if f.position not in exclude]
        return [
            self.catalog.result(f.position, f.score, self._explain(f), {"contributions": f.contributions})
            for f in fused[:k]
        ]

    def recommend_user(self, user_id: str, k: int = 10) -> list[ResultItem]:
        """Known users get their history fused with CF and popularity; unknown users get what is popular."""
        user = self.interactions.user_index(user_id)
        history = History.empty() if user is None else History.of_user(self.interactions, user)
        exclude = set(history.items.tolist()) if self.settings.exclude_purchased else set()
        return self._recommend(history, k, exclude)

    def recommend_session(self, item_ids: list[str], k: int = 10) -> list[ResultItem]:
        known = [p for p in (self.catalog.position(i) for i in item_ids) if p is not None]
        return self._recommend(History.of_items(known), k, set(known))

    def similar_items(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Co-interaction neighbours first, then neighbours by text embedding (covers new items)."""
        position = self.catalog.position(item_id)
        if position is None:
            raise KeyError(f"unknown item {item_id!r}")
        results: list[ResultItem] = []
        knn = self.sources.get("item_knn")
        if isinstance(knn, ItemKNN):
            cands = knn.similar(position, k)
            for pos, score in zip(cands.positions, cands.scores, strict=True):
                results.append(self.catalog.result(int(pos), float(score), "often bought by the same people"))
        if len(results) < k:
            scores = self.vectors @ self.vectors[position]
            taken = {r.item_id for r in results} | {item_id}
            for pos in np.argsort(-scores)[: 3 * k]:
                if len(results) >= k:
                    break
                result = self.catalog.result(int(pos), float(scores[pos]), "similar description")
                if result.item_id not in taken:
                    results.append(result)
        return results[:k]
