"""Recommendations over a built workspace: fits candidate sources at `build`, fuses them at serve time,
applies business rules and explains every result.

Surfaces: a user (`recommend_user`), an anonymous session (`recommend_session`), similar items for an item
(`similar_items`) and complements ('frequently bought together', `complements`). Bad input: k < 1 raises
ValueError; k larger than the catalogue returns every eligible item; an unknown user or an empty session is
a cold start (trending/popular, optionally within a category); an unknown anchor item raises KeyError.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Literal, Self

import numpy as np
import pandas as pd

from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.rank.fusion import Fused, FusionMethod, fuse
from shopfusion.rank.rules import Rules
from shopfusion.recommend.interactions import EVENT_WEIGHTS, Interactions
from shopfusion.recommend.registry import fit_sources
from shopfusion.recommend.sources import CandidateSource, History, Popularity, candidates
from shopfusion.recommend.tuning import FusionChoice, choose_fusion
from shopfusion.results import ResultItem
from shopfusion.settings import RecommendSettings
from shopfusion.workspace import WorkspaceError

MODEL_FILE = "recommend.pkl"
MODEL_VERSION = 5  # bumped whenever the pickled sources change shape: older models must be rebuilt


class StaleModelError(WorkspaceError):
    pass


Surface = Literal["user", "session", "item", "complements"]
# Sources that relate items to items: the 'similar items' surface fuses only these.
ITEM_TO_ITEM = ("item_knn", "ease", "als", "bpr", "content")


class RecommendService:
    def __init__(
        self,
        catalog: CatalogSnapshot,
        vectors: np.ndarray,
        settings: RecommendSettings,
        interactions: Interactions,
        sources: dict[str, CandidateSource],
        fusion: FusionChoice,
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.settings = settings
        self.interactions = interactions
        self.sources = sources
        self.fusion = fusion
        self.weights = {name: fusion.weights.get(name, 0.0) for name in self.sources}
        self.rules = Rules(catalog.frame, vectors, settings)
        self._categories = catalog.frame["category_path"].fillna("").astype(str)
        self._fallback = next((s for s in ("trending", "popularity") if s in self.sources), None)
        self._live: dict[str, list[tuple[int, float]]] = {}  # events since the build, per user
        self._erased: set[str] = set()

    @classmethod
    def fit(
        cls,
        catalog: CatalogSnapshot,
        events: pd.DataFrame,
        vectors: np.ndarray,
        settings: RecommendSettings,
        *,
        k: int = 20,
    ) -> Self:
        """Fit every source on all events; unless weights are configured, choose them on a validation split
        of these events that mirrors the user surface (leave-last-out when purchased items are excluded,
        the most recent stretch of time otherwise)."""
        item_ids = catalog.frame["item_id"].to_numpy(dtype=object)
        interactions = Interactions.from_events(events, item_ids)
        sources = fit_sources(interactions, vectors, settings)
        if settings.source_weights is None:
            leave_one_out = settings.exclude_purchased.get("user", False)
            fusion = choose_fusion(events, item_ids, vectors, settings, leave_one_out=leave_one_out, k=k)
        else:
            fusion = _configured(settings)
        return cls(catalog, vectors, settings, interactions, sources, fusion)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / MODEL_FILE).open("wb") as handle:
            bundle = {
                "version": MODEL_VERSION,
                "interactions": self.interactions,
                "sources": self.sources,
                "fusion": self.fusion,
            }
            pickle.dump(bundle, handle)

    @classmethod
    def load(cls, folder: Path, catalog: CatalogSnapshot, vectors: np.ndarray, settings: RecommendSettings) -> Self:
        with (folder / MODEL_FILE).open("rb") as handle:
            bundle = pickle.load(handle)
        if bundle.get("version") != MODEL_VERSION:
            raise StaleModelError(f"{folder} holds an older recommendation model: run `shopfusion build` again")
        fusion = bundle["fusion"] if settings.source_weights is None else _configured(settings)
        return cls(catalog, vectors, settings, bundle["interactions"], bundle["sources"], fusion)

    # ---- ranking -------------------------------------------------------------------------------------------

    def _mask(self, exclude: np.ndarray, category: str | None) -> np.ndarray:
        """Positions that must not be returned: the excluded ones, and everything outside `category`."""
        mask = np.zeros(len(self.catalog), dtype=bool)
        mask[exclude] = True
        if category:
            mask |= ~self._categories.str.startswith(category).to_numpy()
        return mask

    def rank(
        self,
        history: History,
        k: int,
        exclude: np.ndarray,
        *,
        weights: dict[str, float] | None = None,
        category: str | None = None,
    ) -> list[Fused]:
        """Fuse the sources for one history, pad with trending/popular items when short, apply the rules."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        weights = self.weights if weights is None else weights
        mask = self._mask(exclude, category)
        pool = max(self.settings.pool, k)
        lists = {
            name: candidates(source, history, pool, mask)
            for name, source in self.sources.items()
            if weights.get(name, 0.0) > 0
        }
        fused = fuse(lists, weights, len(self.catalog), self.fusion.method, self.settings.rrf_k)
        if len(fused) < pool and self._fallback is not None:
            taken = mask.copy()
            taken[[f.position for f in fused]] = True
            extra = candidates(self.sources[self._fallback], history, pool - len(fused), taken)
            floor = min((f.score for f in fused), default=1.0)
            fused += fuse({self._fallback: extra}, {self._fallback: floor * 0.5 or 1.0}, pool)
        return self.rules.apply(fused, k)

    def _results(self, fused: list[Fused], surface: Surface) -> list[ResultItem]:
        out = []
        for f in fused:
            because = {name: str(self.catalog.frame.at[pos, "item_id"]) for name, pos in f.because.items()}
            signals = {
                "surface": surface,
                "contributions": {name: round(v, 4) for name, v in f.contributions.items()},
                "weights": {name: w for name, w in self.weights.items() if w > 0},
                "fusion": self.fusion.method,
                "because": because,
            }
            out.append(self.catalog.result(f.position, round(f.score, 6), self.explain(f, surface), signals))
        return out

    def explain(self, fused: Fused, surface: Surface = "user") -> str:
        """A sentence from the source that contributed most, naming the history item behind it."""
        if "pin" in fused.contributions:
            return "featured by the shop"
        if not fused.contributions:
            return "recommended"
        top = max(fused.contributions, key=lambda s: fused.contributions[s])
        pos = fused.because.get(top)
        item = f"“{self.catalog.title(pos)}”" if pos is not None else "items like yours"
        category = str(self._categories.iloc[fused.position]).split(" > ")[-1]
        reasons = {
            "repeat": "you bought this before",
            "item_knn": f"people who bought {item} also bought this",
            "ease": f"often chosen together with {item}",
            "als": f"liked by the same shoppers as {item}" if surface == "item" else f"matches your taste, like {item}",
            "content": f"similar to {item} you viewed",
            "complements": f"bought together with {item}",
            "sequential": f"what shoppers often pick next after {item}",
            "popularity": f"popular in {category}" if category else "popular right now",
            "trending": f"trending in {category}" if category else "popular right now",
        }
        reasons["bpr"] = reasons["als"]
        return reasons.get(top, f"recommended by {top}")

    # ---- surfaces ------------------------------------------------------------------------------------------

    def _exclude(self, surface: Surface, history: History, override: bool | None) -> np.ndarray:
        exclude = self.settings.exclude_purchased.get(surface, False) if override is None else override
        return history.items if exclude else np.zeros(0, dtype=np.int64)

    # ---- real time -----------------------------------------------------------------------------------------

    def record(self, user_id: str, item_id: str, event_type: str) -> bool:
        """Take an event into account from the very next request, without a retrain: the user's history
        grows (and is folded into ALS and read by the sequential model), popularity counters move."""
        position = self.catalog.position(item_id)
        weight = EVENT_WEIGHTS.get(event_type)
        if position is None or weight is None:
            return False
        self._erased.discard(user_id)
        self._live.setdefault(user_id, []).append((position, weight))
        for source in self.sources.values():
            if isinstance(source, Popularity):
                source.scores_[position] += weight
        return True

    def forget(self, user_id: str) -> None:
        """Erasure: the user's stored and live history no longer shape what is served (models that learned
        from them are rebuilt by the next `build`)."""
        self._live.pop(user_id, None)
        self._erased.add(user_id)

    def history_of(self, user_id: str) -> History:
        """The stored history (in time order) followed by events since the build, each item once."""
        user = None if user_id in self._erased else self.interactions.user_index(user_id)
        live = self._live.get(user_id, [])
        if user is None and not live:
            return History.empty()
        stored = History.of_user(self.interactions, user) if user is not None else History.empty()
        if not live:
            return stored
        order = self.interactions.sequences[user].tolist() if user is not None else []
        weight = dict(zip(stored.items.tolist(), stored.weights.tolist(), strict=True))
        recency = dict(zip(stored.items.tolist(), stored.recency.tolist(), strict=True))
        for position, w in live:
            order.append(position)
            weight[position] = weight.get(position, 0.0) + w
            recency[position] = 1.0
        items = list(dict.fromkeys(reversed(order)))[::-1]  # each item once, at its latest place
        return History(  # user -1: sources fold the whole history in instead of reading a stored row
            np.asarray(items, dtype=np.int64),
            np.asarray([weight[i] for i in items], dtype=np.float32),
            np.asarray([recency[i] for i in items], dtype=np.float32),
        )

    def recommend_user(
        self, user_id: str, k: int = 10, *, exclude_purchased: bool | None = None, category: str | None = None
    ) -> list[ResultItem]:
        """Known users get their history fused over every source; unknown users get trending/popular items
        (within `category` if given). Events recorded since the build count at once."""
        history = self.history_of(user_id)
        fused = self.rank(history, k, self._exclude("user", history, exclude_purchased), category=category)
        return self._results(fused, "user")

    def recommend_session(
        self, item_ids: list[str], k: int = 10, *, exclude_purchased: bool | None = None, category: str | None = None
    ) -> list[ResultItem]:
        """An anonymous session: its known items (unknown ids are ignored), latest weighing most."""
        known = [p for p in (self.catalog.position(i) for i in item_ids) if p is not None]
        history = History.of_items(known)
        fused = self.rank(history, k, self._exclude("session", history, exclude_purchased), category=category)
        return self._results(fused, "session")

    def _anchor(self, item_id: str) -> History:
        position = self.catalog.position(item_id)
        if position is None:
            raise KeyError(f"unknown item {item_id!r}")
        return History.of_items([position])

    def similar_items(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Item-to-item sources only (co-interaction, factors, text); text similarity always takes part so
        items without events still get, and appear as, neighbours."""
        history = self._anchor(item_id)
        weights = {n: w for n, w in self.weights.items() if n in ITEM_TO_ITEM and w > 0}
        if "content" in self.sources:
            weights["content"] = max(weights.get("content", 0.0), 0.1 * max(weights.values(), default=1.0))
        fused = self.rank(history, k, self._exclude("item", history, True), weights=weights)
        return self._results(fused, "item")

    def complements(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """'Frequently bought together': co-purchase in the same order first, then co-interaction."""
        history = self._anchor(item_id)
        weights = {"complements": 1.0, "item_knn": 0.1}
        fused = self.rank(history, k, self._exclude("complements", history, True), weights=weights)
        return self._results(fused, "complements")


def _configured(settings: RecommendSettings) -> FusionChoice:
    """Weights given in the settings are used as they are ('auto' fusion then means weighted)."""
    method: FusionMethod = "weighted" if settings.fusion == "auto" else settings.fusion
    return FusionChoice(method, dict(settings.source_weights or {}), None)
