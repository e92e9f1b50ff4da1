"""Candidate rows for the learned recommendation ranker: the union of each source's top `ranker.candidates`
per person, and for each (person, candidate) pair its features — every source's score, its share of that
source's best and its rank (beyond the cut: a sentinel), the person's history size and idleness, the item's
popularity, age and price, text similarity of the item to the person's last item and to their whole history
(sentence embeddings, and TF-IDF over the item's own terms: exact brands and product lines), what people
pick next after the person's latest items, and the share of their history in the item's category."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sources import CandidateSource, History, score_matrix
from shopfusion.settings import RecommendSettings

# Features that are not about one source, by the group an explanation names them under.
CONTEXT_FEATURES = {
    "user_items": "user",
    "user_weight": "user",
    "user_idle_days": "user",
    "item_users": "item",
    "item_idle_days": "item",
    "item_age_days": "item",
    "price": "item",
    "sources_agreeing": "agreement",
    "text_last": "text",
    "text_profile": "text",
    "text_max": "text",
    "category_share": "category",
    "next_last": "next",
    "next_recent": "next",
    "text_recent": "text",
    "terms_last": "text",
    "terms_max": "text",
    "terms_profile": "text",
}
PER_SOURCE = ("score", "share", "rank")
# Weight of an item picked 1, 2, 3 steps after another in someone's sequence (the 'next' features), and of
# the person's most recent items (latest first) when those features and text_recent look back from them.
STEP_WEIGHTS = (1.0, 0.5, 0.25)
CELLS_PER_CHUNK = 4_000_000  # people × catalogue cells scored at once (bounds memory on big catalogues)


@dataclass(frozen=True)
class CandidateRows:
    """Candidate pairs of a batch of histories, grouped by history (rows of one history are contiguous)."""

    history: np.ndarray  # per row: index of its history in the batch
    positions: np.ndarray  # per row: catalogue position
    features: np.ndarray  # rows × features


class FeatureBuilder:
    """Turns histories into candidate rows with features, for one set of fitted sources and the events they
    were fitted on (training uses a builder over the validation fit, serving one over the full fit)."""

    def __init__(
        self,
        data: Interactions,
        sources: Mapping[str, CandidateSource],
        vectors: np.ndarray,
        terms: sp.csr_matrix,
        frame: pd.DataFrame,
        settings: RecommendSettings,
    ) -> None:
        self.sources = dict(sources)
        self.vectors = vectors
        self.terms = terms
        self.depth = settings.ranker.candidates
        self.n_items = len(vectors)
        self.names = [f"{name}:{kind}" for name in self.sources for kind in PER_SOURCE] + list(CONTEXT_FEATURES)
        ages = _age_days(data.recency)
        self.user_idle = _row_extreme(ages, np.min)
        users_per_item = np.asarray((data.matrix > 0).sum(axis=0)).ravel()
        self.item_users = np.log1p(users_per_item).astype(np.float32)
        by_item = ages.tocsc()
        self.item_idle = _row_extreme(by_item.T.tocsr(), np.min)
        self.item_age = _row_extreme(by_item.T.tocsr(), np.max)
        self.price = pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=np.float32)
        self.category = pd.factorize(frame["category_path"].fillna("").astype(str))[0]
        self.has_category = bool((frame["category_path"].fillna("") != "").any())
        self.sequences = data.sequences
        self.transitions = transitions(data.sequences, data.n_items)

    def group(self, feature: str) -> str:
        """The explanation group of a feature: its source, or one of CONTEXT_FEATURES' groups."""
        return CONTEXT_FEATURES.get(feature) or feature.split(":")[0]

    def build(self, histories: Sequence[History], masks: Sequence[np.ndarray]) -> CandidateRows:
        """Candidates of each history (never a position its mask marks) with their features."""
        chunk = max(1, CELLS_PER_CHUNK // max(self.n_items * max(len(self.sources), 1), 1))
        parts = [
            self._chunk(histories[start : start + chunk], masks[start : start + chunk], start)
            for start in range(0, len(histories), chunk)
        ]
        if not parts:
            return CandidateRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(self.names))))
        return CandidateRows(*(np.concatenate([getattr(p, f) for p in parts]) for f in CandidateRows.__annotations__))

    def _chunk(self, histories: Sequence[History], masks: Sequence[np.ndarray], offset: int) -> CandidateRows:
        blocked = np.vstack(masks)
        member = np.zeros(blocked.shape, dtype=bool)
        agreeing = np.zeros(blocked.shape, dtype=np.float32)
        tables = []
        for source in self.sources.values():
            scores = score_matrix(source, histories)
            scores[blocked] = 0.0
            ranks = np.full(blocked.shape, self.depth + 1, dtype=np.float32)
            rows, cols, order = _top_per_row(scores, self.depth)
            ranks[rows, cols] = order + 1
            member[rows, cols] = True
            agreeing[rows, cols] += 1
            tables.append((scores, ranks, scores.max(axis=1)))
        users, positions = np.nonzero(member)
        columns: list[np.ndarray] = []
        for scores, ranks, best in tables:
            value = scores[users, positions]
            top = best[users]
            columns += [value, value / np.where(top > 0, top, 1.0), ranks[users, positions]]
        context = self._context(histories, users, positions)
        context["sources_agreeing"] = agreeing[users, positions]
        features = np.column_stack([*columns, *(context[name] for name in CONTEXT_FEATURES)])
        return CandidateRows(users + offset, positions, features.astype(np.float32))

    def _context(self, histories: Sequence[History], users: np.ndarray, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Every CONTEXT_FEATURES value but sources_agreeing, one per candidate row."""
        n = len(histories)
        size = np.array([len(h.items) for h in histories], dtype=np.float32)
        weight = np.array([float(h.weights.sum()) for h in histories], dtype=np.float32)
        idle = np.array([self.user_idle[h.user] if h.user >= 0 else 0.0 for h in histories], dtype=np.float32)
        text_last = np.zeros(len(users), dtype=np.float32)
        text_profile = np.zeros(len(users), dtype=np.float32)
        text_max = np.zeros(len(users), dtype=np.float32)
        category_share = np.zeros(len(users), dtype=np.float32)
        next_last = np.zeros(len(users), dtype=np.float32)
        next_recent = np.zeros(len(users), dtype=np.float32)
        text_recent = np.zeros(len(users), dtype=np.float32)
        terms = {name: np.zeros(len(users), dtype=np.float32) for name in ("terms_last", "terms_max", "terms_profile")}
        bounds = np.searchsorted(users, np.arange(n + 1))
        for u, history in enumerate(histories):
            rows = slice(bounds[u], bounds[u + 1])
            if len(history.items) == 0 or rows.start == rows.stop:
                continue
            candidate_vectors = self.vectors[positions[rows]]
            similarity = candidate_vectors @ self.vectors[history.items].T  # candidates × history
            strength = history.strength()
            profile = strength / max(float(strength.sum()), 1e-9)
            last = last_index(history)
            text_last[rows] = similarity[:, last]
            text_profile[rows] = similarity @ profile
            text_max[rows] = similarity.max(axis=1)
            recent = self.recent_items(history)
            following = self.transitions[recent][:, positions[rows]].toarray()  # recent × candidates
            next_last[rows] = following[0]
            next_recent[rows] = np.asarray(STEP_WEIGHTS[: len(recent)], dtype=np.float32) @ following
            text_recent[rows] = (candidate_vectors @ self.vectors[recent].T).mean(axis=1)
            shared = (self.terms[positions[rows]] @ self.terms[history.items].T).toarray()  # candidates × history
            terms["terms_last"][rows] = shared[:, last]
            terms["terms_max"][rows] = shared.max(axis=1)
            terms["terms_profile"][rows] = shared @ profile
            if self.has_category:
                mass = np.bincount(self.category[history.items], weights=strength, minlength=self.category.max() + 1)
                category_share[rows] = mass[self.category[positions[rows]]] / max(float(mass.sum()), 1e-9)
        return {
            "user_items": size[users],
            "user_weight": weight[users],
            "user_idle_days": idle[users],
            "item_users": self.item_users[positions],
            "item_idle_days": self.item_idle[positions],
            "item_age_days": self.item_age[positions],
            "price": self.price[positions],
            "text_last": text_last,
            "text_profile": text_profile,
            "text_max": text_max,
            "category_share": category_share,
            "next_last": next_last,
            "next_recent": next_recent,
            "text_recent": text_recent,
            **terms,
        }

    def recent_items(self, history: History) -> np.ndarray:
        """The person's most recent distinct items, latest first (at most len(STEP_WEIGHTS)): a known user's
        own time order, otherwise the history's recency."""
        if 0 <= history.user < len(self.sequences):
            ordered = self.sequences[history.user][::-1]
        else:
            ordered = history.items[np.argsort(-history.recency, kind="stable")]
        return np.asarray(list(dict.fromkeys(ordered.tolist()))[: len(STEP_WEIGHTS)], dtype=np.int64)

    def next_because(self, history: History, positions: np.ndarray) -> np.ndarray:
        """For each position, the recent item it most often followed in others' sequences (-1 if none)."""
        recent = self.recent_items(history)
        if len(recent) == 0 or len(positions) == 0:
            return np.full(len(positions), -1, dtype=np.int64)
        following = self.transitions[recent][:, positions].toarray()
        return np.where(following.max(axis=0) > 0, recent[following.argmax(axis=0)], -1).astype(np.int64)

    def text_because(self, history: History, positions: np.ndarray) -> np.ndarray:
        """For each position, the history item whose text is closest to it (-1 without history)."""
        if len(history.items) == 0 or len(positions) == 0:
            return np.full(len(positions), -1, dtype=np.int64)
        similarity = self.vectors[positions] @ self.vectors[history.items].T
        return history.items[similarity.argmax(axis=1)].astype(np.int64)


def transitions(sequences: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Item × item: how often the column item was picked within len(STEP_WEIGHTS) steps after the row item
    (weighted by STEP_WEIGHTS), as a share of the row's total: 'what people pick next after X'."""
    rows, cols, values = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0, np.float32)]
    for sequence in sequences:
        for step, weight in enumerate(STEP_WEIGHTS, start=1):
            if len(sequence) > step:
                rows.append(sequence[:-step])
                cols.append(sequence[step:])
                values.append(np.full(len(sequence) - step, weight, dtype=np.float32))
    counts = sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n_items, n_items)
    )
    counts.setdiag(0)
    counts.eliminate_zeros()
    return normalize(counts, norm="l1", axis=1).astype(np.float32).tocsr()


def last_index(history: History) -> int:
    """Index in `history.items` of the most recent item (the later one on a tie)."""
    return len(history.recency) - 1 - int(np.argmax(history.recency[::-1]))


def _age_days(recency: Any) -> Any:
    """Sparse ages in days from sparse recency 1 / (1 + age)."""
    ages = recency.copy().astype(np.float32)
    ages.data = 1.0 / np.maximum(ages.data, 1e-9) - 1.0
    return ages


def _row_extreme(matrix: Any, reduce: Any) -> np.ndarray:
    """Per row of a CSR matrix the min/max of its stored values; NaN for an empty row."""
    out = np.full(matrix.shape[0], np.nan, dtype=np.float32)
    for r in np.flatnonzero(np.diff(matrix.indptr)):
        out[r] = reduce(matrix.data[matrix.indptr[r] : matrix.indptr[r + 1]])
    return out


def _top_per_row(scores: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, rank from 0) of each row's `depth` best positive scores."""
    depth = min(depth, scores.shape[1])
    if depth == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top, top_scores = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)
    rows, rank = np.nonzero(top_scores > 0)
    return rows, top[rows, rank], rank
