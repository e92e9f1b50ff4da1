"""Recommendations over a built workspace: fits candidate sources at `build`, fuses them at serve time,
applies business rules and explains every result.

Surfaces: a user (`recommend_user`), an anonymous session (`recommend_session`), similar items for an item
(`similar_items`) and complements ('frequently bought together', `complements`). Bad input: k < 1 raises
ValueError; k larger than the catalogue returns every eligible item; an unknown user or an empty session is
a cold start (trending/popular, optionally within a category); an unknown anchor item raises KeyError.
"""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shopfusion.catalog.schema import CATEGORY_SEPARATOR
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.index.terms import term_vectors
from shopfusion.rank.fusion import Fused, FusionMethod, fuse
from shopfusion.rank.rules import Rules
from shopfusion.recommend.interactions import EVENT_WEIGHTS, Interactions
from shopfusion.recommend.ranker import LearnedRanker
from shopfusion.recommend.ranker_features import FeatureBuilder
from shopfusion.recommend.ranker_training import train_ranker
from shopfusion.recommend.registry import fit_sources, sequential_epochs
from shopfusion.recommend.sequential import SequentialSource
from shopfusion.recommend.sources import CandidateSource, History, Popularity, candidates, candidates_many
from shopfusion.recommend.tuning import FusionChoice, choose_fusion, validation_sets
from shopfusion.results import ResultItem
from shopfusion.settings import RecommendSettings
from shopfusion.workspace import WorkspaceError

MODEL_FILE = "recommend.pkl"
MODEL_VERSION = 11  # bumped whenever the pickled sources change shape: older models must be rebuilt


class StaleModelError(WorkspaceError):
    pass


@dataclass(frozen=True)
class LiveHistory:
    """What a server knows of a user that the served build did not: their events since it read the store
    (item id, event type; oldest first), and whether they were erased since (its history of them is void)."""

    events: tuple[tuple[str, str], ...] = ()
    erased: bool = False


Surface = Literal["user", "session", "item", "complements"]
# Sources that relate items to items: the 'similar items' surface fuses only these.
ITEM_TO_ITEM = ("item_knn", "ease", "als", "bpr", "content")
# Learned-ranker contribution groups that are no reason to show an item (who asks, how many sources agree).
UNEXPLAINED = ("base", "user", "agreement")


class RecommendService:
    def __init__(
        self,
        catalog: CatalogSnapshot,
        vectors: np.ndarray,
        terms: sp.csr_matrix,
        settings: RecommendSettings,
        interactions: Interactions,
        sources: dict[str, CandidateSource],
        fusion: FusionChoice,
        ranker: LearnedRanker | None = None,
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.terms = terms
        self.settings = settings
        self.interactions = interactions
        self.sources = sources
        self.fusion = fusion
        self.weights = {name: fusion.weights.get(name, 0.0) for name in self.sources}
        self.features = (
            FeatureBuilder(interactions, sources, vectors, terms, catalog.frame, settings) if ranker else None
        )
        # a ranker trained over other sources than these (settings changed since) cannot be used
        usable = ranker is not None and self.features is not None and self.features.names == ranker.feature_names
        self.ranker = ranker if usable else None
        # the ranker serves unless the fusion weights did better on the held-out people
        learned = self.ranker is not None and _at_least_as_good(self.ranker, fusion)
        self.method = "learned" if learned else fusion.method
        self.rules = Rules(catalog.frame, vectors, settings)
        self._categories = catalog.frame["category_path"].fillna("").astype(str)
        self._fallback = next((s for s in ("trending", "popularity") if s in self.sources), None)

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
        """Fit every source on all events. Unless weights are configured, hold out part of these events the
        way the user surface is used (each user's last item when purchased items are excluded, the most
        recent stretch of time otherwise), fit the sources on the rest, and learn from what was held out:
        fusion weights, and (fusion 'learned') the ranker, which also learns from `ranker.steps` - 1 earlier
        such steps; the sequential model's number of epochs is chosen on the latest step."""
        item_ids = catalog.frame["item_id"].to_numpy(dtype=object)
        interactions = Interactions.from_events(events, item_ids)
        terms = term_vectors(catalog.texts())
        if settings.source_weights is not None:
            sources = fit_sources(interactions, vectors, settings, terms=terms)
            return cls(catalog, vectors, terms, settings, interactions, sources, _configured(settings))
        leave_one_out = settings.exclude_purchased.get("user", False)
        learned = settings.fusion == "learned"
        steps = settings.ranker.steps if learned else 1
        validations = validation_sets(
            events, item_ids, vectors, settings, leave_one_out=leave_one_out, steps=steps, terms=terms
        )
        validation = validations[0] if validations else None
        fusion = choose_fusion(validation, settings, k=k)
        ranker = train_ranker(validations, catalog.frame, vectors, terms, settings, k) if learned else None
        epochs = sequential_epochs(validation.sources) if validation is not None else None
        sources = fit_sources(interactions, vectors, settings, sequential_epochs=epochs, terms=terms)
        return cls(catalog, vectors, terms, settings, interactions, sources, fusion, ranker)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / MODEL_FILE).open("wb") as handle:
            bundle = {
                "version": MODEL_VERSION,
                "interactions": self.interactions,
                "terms": self.terms,
                "sources": self.sources,
                "fusion": self.fusion,
                "ranker": self.ranker,
            }
            pickle.dump(bundle, handle)

    @classmethod
    def load(cls, folder: Path, catalog: CatalogSnapshot, vectors: np.ndarray, settings: RecommendSettings) -> Self:
        with (folder / MODEL_FILE).open("rb") as handle:
            bundle = pickle.load(handle)
        if bundle.get("version") != MODEL_VERSION:
            raise StaleModelError(f"{folder} holds an older recommendation model: run `shopfusion build` again")
        fitted = (bundle["terms"], settings, bundle["interactions"], bundle["sources"])
        if settings.source_weights is not None:
            return cls(catalog, vectors, *fitted, _configured(settings))
        fusion, ranker = bundle["fusion"], bundle["ranker"] if settings.fusion == "learned" else None
        return cls(catalog, vectors, *fitted, fusion, ranker)

    def training_summary(self) -> dict[str, object]:
        """What was learned at fit: the ranking method, the fusion weights and their validation nDCG, and the
        learned ranker's and the sequential model's training reports."""
        sequential = self.sources.get("sequential")
        ranker = self.ranker.report if self.ranker is not None else None
        trained = sequential.model.report_ if isinstance(sequential, SequentialSource) else None
        return {
            "method": self.method,
            "fusion": self.fusion.method,
            "weights": {n: w for n, w in self.weights.items() if w > 0},
            "validation_ndcg": self.fusion.validation_ndcg,
            "ranker": asdict(ranker) if ranker is not None else None,
            "sequential": asdict(trained) if trained is not None else None,
        }

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
        """Rank for one history: see `rank_many`."""
        return self.rank_many([history], k, [exclude], weights=weights, category=category)[0]

    def rank_many(
        self,
        histories: Sequence[History],
        k: int,
        excludes: Sequence[np.ndarray],
        *,
        weights: dict[str, float] | None = None,
        category: str | None = None,
        learned: bool | None = None,
        explain: bool = True,
    ) -> list[list[Fused]]:
        """Per history: the learned ranker over every source's candidates or the sources fused by weight
        (`learned` None: the chosen method; True/False force one, to evaluate both; given `weights` always
        fuse), padded with trending/popular items when short, with the rules applied. Without `explain` the
        ranker's per-feature contributions are not computed (bulk evaluation)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        masks = [self._mask(e, category) for e in excludes]
        pool = max(self.settings.pool, k)
        use_ranker = self.method == "learned" if learned is None else learned
        if self.ranker is not None and self.features is not None and weights is None and use_ranker:
            ranked, rows = self._learned(histories, masks, pool)
        else:
            ranked = self._fused(histories, masks, pool, self.weights if weights is None else weights, explain)
            rows = [{} for _ in histories]
        out = []
        for history, mask, fused, features in zip(histories, masks, ranked, rows, strict=True):
            chosen_items = self.rules.apply(self._padded(fused, history, mask, pool), k)
            if explain and features:
                self._attribute(history, chosen_items, features)
            out.append(chosen_items)
        return out

    def _fused(
        self,
        histories: Sequence[History],
        masks: Sequence[np.ndarray],
        pool: int,
        weights: dict[str, float],
        explain: bool,
    ) -> list[list[Fused]]:
        """Sources fused by weight; with `explain` each candidate also names the history item behind it."""
        lists = {
            name: [candidates(source, h, pool, m) for h, m in zip(histories, masks, strict=True)]
            if explain
            else candidates_many(source, histories, pool, masks)
            for name, source in self.sources.items()
            if weights.get(name, 0.0) > 0
        }
        return [
            fuse(
                {name: c[i] for name, c in lists.items()},
                weights,
                len(self.catalog),
                self.fusion.method,
                self.settings.rrf_k,
            )
            for i in range(len(histories))
        ]

    def _learned(
        self, histories: Sequence[History], masks: Sequence[np.ndarray], pool: int
    ) -> tuple[list[list[Fused]], list[dict[int, np.ndarray]]]:
        """The ranker's best `pool` candidates per history (score = P(picked next)), and their feature rows."""
        assert self.ranker is not None and self.features is not None
        rows = self.features.build(histories, masks)
        margins = self.ranker.margin(rows.features, threads=1 if len(histories) == 1 else self.settings.threads)
        ranked, features = [], []
        bounds = np.searchsorted(rows.history, np.arange(len(histories) + 1))
        for start, end in itertools.pairwise(bounds):
            best = start + np.argsort(-margins[start:end], kind="stable")[:pool]
            ranked.append([Fused(int(rows.positions[r]), float(_sigmoid(margins[r]))) for r in best])
            features.append({int(rows.positions[r]): rows.features[r] for r in best})
        return ranked, features

    def _attribute(self, history: History, chosen: list[Fused], features: dict[int, np.ndarray]) -> None:
        """Fill each ranked item's contributions (log-odds per feature group, plus 'base'; they sum to
        logit(score) before boosts) and the history item behind each source."""
        assert self.ranker is not None and self.features is not None
        scored = [f for f in chosen if f.position in features]
        if not scored:
            return
        contributions = self.ranker.contributions(np.vstack([features[f.position] for f in scored]))
        groups = [self.features.group(n) for n in self.ranker.feature_names] + ["base"]
        positions = np.array([f.position for f in scored])
        behind = {name: source.because(history, positions) for name, source in self.sources.items()}
        behind["text"] = self.features.text_because(history, positions)
        behind["next"] = self.features.next_because(history, positions)
        for i, f in enumerate(scored):
            f.contributions = {}
            for group, value in zip(groups, contributions[i].tolist(), strict=True):
                f.contributions[group] = f.contributions.get(group, 0.0) + value
            f.because = {name: int(b[i]) for name, b in behind.items() if b[i] >= 0}

    def _padded(self, fused: list[Fused], history: History, mask: np.ndarray, pool: int) -> list[Fused]:
        """Trending/popular items after the ranked ones when fewer than `pool` were found."""
        if len(fused) >= pool or self._fallback is None:
            return fused
        taken = mask.copy()
        taken[[f.position for f in fused]] = True
        extra = candidates(self.sources[self._fallback], history, pool - len(fused), taken)
        floor = min((f.score for f in fused), default=1.0)
        return fused + fuse({self._fallback: extra}, {self._fallback: floor * 0.5 or 1.0}, pool)

    def _results(self, fused: list[Fused], surface: Surface) -> list[ResultItem]:
        out = []
        for f in fused:
            because = {name: self.catalog.item_id(pos) for name, pos in f.because.items()}
            signals = {
                "surface": surface,
                "contributions": {name: round(v, 4) for name, v in f.contributions.items()},
                "weights": {name: w for name, w in self.weights.items() if w > 0},
                "fusion": self.method,
                "because": because,
            }
            out.append(self.catalog.result(f.position, round(f.score, 6), self.explain(f, surface), signals))
        return out

    def explain(self, fused: Fused, surface: Surface = "user") -> str:
        """A sentence from the source (or, with the learned ranker, the feature group) that contributed most,
        naming the history item behind it."""
        if "pin" in fused.contributions:
            return "featured by the shop"
        category = str(self._categories.iloc[fused.position]).split(CATEGORY_SEPARATOR)[-1]
        popular = f"popular in {category}" if category else "popular right now"
        explained = {n: v for n, v in fused.contributions.items() if n not in UNEXPLAINED}
        if not explained or max(explained.values()) <= 0:
            return popular if fused.contributions else "recommended"
        top = max(explained, key=lambda s: explained[s])
        pos = fused.because.get(top)
        item = f"“{self.catalog.title(pos)}”" if pos is not None else "items like yours"
        reasons = {
            "repeat": "you bought this before",
            "item_knn": f"people who bought {item} also bought this",
            "ease": f"often chosen together with {item}",
            "als": f"liked by the same shoppers as {item}" if surface == "item" else f"matches your taste, like {item}",
            "content": f"similar to {item} you viewed",
            "text": f"similar to {item} you viewed",
            "complements": f"bought together with {item}",
            "sequential": f"what shoppers often pick next after {item}",
            "next": f"what shoppers often pick next after {item}",
            "category": f"you often shop in {category}" if category else "matches what you shop for",
            "popularity": popular,
            "item": popular,
            "trending": f"trending in {category}" if category else "popular right now",
        }
        reasons["bpr"] = reasons["als"]
        return reasons.get(top, f"recommended by {top}")

    # ---- surfaces ------------------------------------------------------------------------------------------

    def _exclude(self, surface: Surface, history: History, override: bool | None) -> np.ndarray:
        exclude = self.settings.exclude_purchased.get(surface, False) if override is None else override
        return history.items if exclude else np.zeros(0, dtype=np.int64)

    # ---- real time -----------------------------------------------------------------------------------------

    def count_event(self, item_id: str, event_type: str) -> None:
        """An event the build did not see moves the popularity and trending counters (the server replays each
        one into every model version it loads)."""
        position, weight = self.catalog.position(item_id), EVENT_WEIGHTS.get(event_type)
        if position is None or weight is None:
            return
        for source in self.sources.values():
            if isinstance(source, Popularity):
                source.scores_[position] += weight

    def history_of(self, user_id: str, live: LiveHistory | None = None) -> History:
        """The stored history (in time order; none when the user was erased since the build) followed by the
        `live` events the build did not see, each item once."""
        live = live or LiveHistory()
        user = None if live.erased else self.interactions.user_index(user_id)
        recent = [
            (position, weight)
            for position, weight in ((self.catalog.position(i), EVENT_WEIGHTS.get(t)) for i, t in live.events)
            if position is not None and weight is not None
        ]
        stored = History.of_user(self.interactions, user) if user is not None else History.empty()
        if not recent:
            return stored
        order = self.interactions.sequences[user].tolist() if user is not None else []
        weight = dict(zip(stored.items.tolist(), stored.weights.tolist(), strict=True))
        recency = dict(zip(stored.items.tolist(), stored.recency.tolist(), strict=True))
        for position, w in recent:
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
        self,
        user_id: str,
        k: int = 10,
        *,
        exclude_purchased: bool | None = None,
        category: str | None = None,
        live: LiveHistory | None = None,
    ) -> list[ResultItem]:
        """Known users get their history fused over every source; unknown users get trending/popular items
        (within `category` if given). `live`: what the user did since the build, counted at once."""
        history = self.history_of(user_id, live)
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
    """Weights given in the settings are used as they are ('auto' and 'learned' fusion then mean weighted)."""
    method: FusionMethod = "rrf" if settings.fusion == "rrf" else "weighted"
    return FusionChoice(method, dict(settings.source_weights or {}), None)


def _sigmoid(margin: float) -> float:
    return 1.0 / (1.0 + math.exp(-margin))


def _at_least_as_good(ranker: LearnedRanker, fusion: FusionChoice) -> bool:
    """The ranker's nDCG on its early-stopping people against the fusion weights' on theirs (both held out
    from the training events the same way)."""
    return fusion.validation_ndcg is None or ranker.report.ndcg >= fusion.validation_ndcg
