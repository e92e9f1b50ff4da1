"""Learned ranking of recommendation candidates (a CTR-style model over every source).

Candidates are the union of each source's top `ranker_candidates`; each (person, candidate) pair gets
features — every source's score, its share of that source's best and its rank (beyond the cut: a sentinel),
the person's history size and idleness, the item's popularity, age and price, text similarity of the item
to the person's last item and to their whole history, and the share of their history in the item's
category. LightGBM LambdaRank learns to order each person's candidates so that their held-out next
interactions come first, stopping early on nDCG@k of a further held-out share of people; Platt scaling on
that share turns its scores into calibrated log-odds of being picked (AUC and logloss are reported there).
Per-feature contributions (`pred_contrib`, scaled the same way) add up to that log-odds and are what
explanations quote.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sources import CandidateSource, History, score_matrix
from shopfusion.recommend.tuning import ValidationSet
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
}
PER_SOURCE = ("score", "share", "rank")
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
        frame: pd.DataFrame,
        settings: RecommendSettings,
    ) -> None:
        self.sources = dict(sources)
        self.vectors = vectors
        self.depth = settings.ranker_candidates
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
        bounds = np.searchsorted(users, np.arange(n + 1))
        for u, history in enumerate(histories):
            rows = slice(bounds[u], bounds[u + 1])
            if len(history.items) == 0 or rows.start == rows.stop:
                continue
            candidate_vectors = self.vectors[positions[rows]]
            similarity = candidate_vectors @ self.vectors[history.items].T  # candidates × history
            strength = history.strength()
            text_last[rows] = similarity[:, last_index(history)]
            text_profile[rows] = similarity @ (strength / max(float(strength.sum()), 1e-9))
            text_max[rows] = similarity.max(axis=1)
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
        }

    def text_because(self, history: History, positions: np.ndarray) -> np.ndarray:
        """For each position, the history item whose text is closest to it (-1 without history)."""
        if len(history.items) == 0 or len(positions) == 0:
            return np.full(len(positions), -1, dtype=np.int64)
        similarity = self.vectors[positions] @ self.vectors[history.items].T
        return history.items[similarity.argmax(axis=1)].astype(np.int64)


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


@dataclass
class RankerReport:
    users: int
    rows: int
    positives: int
    trees: int
    auc: float  # on the early-stopping share of people
    logloss: float  # of the calibrated probabilities, same people
    ndcg: float  # nDCG@k of the ranked candidates of the early-stopping people, every held-out item counted
    seconds: float


class LearnedRanker:
    """LightGBM LambdaRank over each person's candidates (fit / margin / contributions), its scores mapped to
    calibrated log-odds of being picked next."""

    def __init__(self, feature_names: list[str], settings: RecommendSettings, seed: int = 0) -> None:
        self.feature_names = feature_names
        self.settings = settings
        self.seed = seed
        self.booster_: Any = None
        self.scale_, self.shift_ = 1.0, 0.0  # raw ranking score → log-odds (Platt scaling)
        self.report_: RankerReport | None = None

    def fit(self, rows: CandidateRows, labels: np.ndarray, held_sizes: np.ndarray, k: int) -> Self:
        """`labels`: 1 where the candidate was picked next; `held_sizes`: held-out items per history (for
        nDCG's ideal, counting items the candidates missed)."""
        import lightgbm as lgb

        started = time.perf_counter()
        s = self.settings
        n_histories = len(held_sizes)
        rng = np.random.default_rng(self.seed)
        stopping = rng.random(n_histories) < s.ranker_holdout
        in_stopping = stopping[rows.history]
        params = {
            "objective": "lambdarank",
            "learning_rate": s.ranker_learning_rate,
            "num_leaves": s.ranker_leaves,
            "min_child_samples": s.ranker_min_child_samples,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "metric": "ndcg",
            "eval_at": [k],
            "num_threads": s.threads,
            "seed": self.seed,
            "verbose": -1,
        }
        fit_rows, stop_rows = ~in_stopping, in_stopping
        train = lgb.Dataset(
            rows.features[fit_rows],
            labels[fit_rows],
            group=_group_sizes(rows.history[fit_rows]),
            feature_name=_lgb_names(self.feature_names),
            free_raw_data=True,
        )
        valid = lgb.Dataset(
            rows.features[stop_rows], labels[stop_rows], group=_group_sizes(rows.history[stop_rows]), reference=train
        )
        self.booster_ = lgb.train(
            params,
            train,
            num_boost_round=s.ranker_max_trees,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(s.ranker_early_stopping, verbose=False)],
        )
        raw = np.asarray(self.booster_.predict(rows.features[stop_rows], raw_score=True, num_threads=s.threads))
        self._calibrate(raw, labels[stop_rows])
        probability = 1.0 / (1.0 + np.exp(-(self.scale_ * raw + self.shift_)))
        ndcg = _ndcg(rows.history[stop_rows], raw, labels[stop_rows], held_sizes, np.flatnonzero(stopping), k)
        self.report_ = RankerReport(
            users=n_histories,
            rows=len(labels),
            positives=int(labels.sum()),
            trees=int(self.booster_.best_iteration or self.booster_.current_iteration()),
            auc=round(float(roc_auc_score(labels[stop_rows], raw)), 4),
            logloss=round(float(log_loss(labels[stop_rows], probability, labels=[0, 1])), 4),
            ndcg=round(float(ndcg), 4),
            seconds=round(time.perf_counter() - started, 1),
        )
        return self

    def _calibrate(self, raw: np.ndarray, labels: np.ndarray) -> None:
        """Platt scaling of the ranking scores into log-odds of being picked: a ranking objective orders
        well but its scores are no probabilities."""
        from sklearn.linear_model import LogisticRegression

        platt = LogisticRegression(C=1e4).fit(raw[:, None], labels)
        self.scale_, self.shift_ = float(platt.coef_[0, 0]), float(platt.intercept_[0])

    def margin(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Calibrated log-odds that each candidate is picked next."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        raw = np.asarray(self.booster_.predict(features, raw_score=True, num_threads=threads))
        return self.scale_ * raw + self.shift_

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """rows × (features + 1): each feature's share of the log-odds, the last column the base value;
        each row sums to `margin`."""
        raw = np.asarray(self.booster_.predict(features, pred_contrib=True, num_threads=1))
        out = raw * self.scale_
        out[:, -1] += self.shift_
        return out


def _lgb_names(names: list[str]) -> list[str]:
    return [n.replace(":", "__") for n in names]


def _group_sizes(history: np.ndarray) -> np.ndarray:
    """Sizes of the runs of equal values (rows are grouped by history)."""
    if len(history) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, history[1:] != history[:-1]])
    return np.diff(np.r_[starts, len(history)])


def _ndcg(
    history: np.ndarray, margins: np.ndarray, labels: np.ndarray, held_sizes: np.ndarray, users: np.ndarray, k: int
) -> float:
    """Mean binary nDCG@k over `users` of candidates ranked by margin; ideal = min(held items, k) hits."""
    discount = 1.0 / np.log2(np.arange(k) + 2)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    total = 0.0
    bounds = np.searchsorted(history, users, side="left"), np.searchsorted(history, users, side="right")
    for u, start, end in zip(users, *bounds, strict=True):
        order = np.argsort(-margins[start:end], kind="stable")[:k]
        dcg = float((labels[start:end][order] * discount[: len(order)]).sum())
        best = ideal[min(int(held_sizes[u]), k)]
        total += dcg / best if best > 0 else 0.0
    return total / max(len(users), 1)


def train_ranker(
    validation: ValidationSet | None, frame: pd.DataFrame, vectors: np.ndarray, settings: RecommendSettings, k: int
) -> LearnedRanker | None:
    """A ranker trained on the validation people's held-out items; None when the candidates hold fewer
    than `ranker_min_positives` of them (too little to learn from: fusion weights are used instead)."""
    if validation is None or not validation.sources:
        return None
    n = settings.ranker_users
    histories = validation.histories[:n]
    masks = [position_mask(e, validation.data.n_items) for e in validation.exclusions()[:n]]
    builder = FeatureBuilder(validation.data, validation.sources, vectors, frame, settings)
    rows = builder.build(histories, masks)
    labels = np.asarray(validation.targets[rows.history, rows.positions]).ravel().astype(np.float32)
    if labels.sum() < settings.ranker_min_positives:
        return None
    return LearnedRanker(builder.names, settings).fit(rows, labels, validation.sizes[:n], k)


def position_mask(positions: np.ndarray, n_items: int) -> np.ndarray:
    mask = np.zeros(n_items, dtype=bool)
    mask[positions] = True
    return mask
