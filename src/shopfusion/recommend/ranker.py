"""Learned ranking of recommendation candidates (a CTR-style model over every source).

Candidates are the union of each source's top `ranker_candidates`; each (person, candidate) pair gets
features — every source's score, its share of that source's best and its rank (beyond the cut: a sentinel),
the person's history size and idleness, the item's popularity, age and price, text similarity of the item
to the person's last item and to their whole history (sentence embeddings, and TF-IDF over the item's own
terms: exact brands and product lines), and the share of their history in the item's category. LightGBM
LambdaRank learns to order each person's candidates so that their held-out next interactions come first,
stopping early on nDCG@k of a further held-out share of people; Platt scaling on that share turns its
scores into calibrated log-odds of being picked (AUC and logloss are reported there).
Per-feature contributions (path credits read from the leaves a candidate lands in, scaled the same way;
see rank/trees.py) add up to that log-odds and are what explanations quote.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.preprocessing import normalize

from shopfusion.rank.trees import LeafContributions
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


@dataclass
class RankerReport:
    users: int
    rows: int
    positives: int
    trees: int  # summed over the models
    auc: float  # on each model's early-stopping share of people, averaged over the models
    logloss: float  # of the calibrated probabilities, same people
    ndcg: float  # nDCG@k of the ranked candidates of the early-stopping people, every held-out item counted
    seconds: float
    models: int = 1


@dataclass
class _Member:
    """One LightGBM model, the Platt scaling of its raw scores into log-odds and its leaves' credits."""

    booster: Any
    scale: float
    shift: float
    credits: LeafContributions


class LearnedRanker:
    """LightGBM LambdaRank over each person's candidates (fit / margin / contributions), its scores mapped to
    calibrated log-odds of being picked next. `ranker_models` models, each stopped early on a different share
    of the people, are averaged: with few positives the stopping point of one model is noisy."""

    def __init__(self, feature_names: list[str], settings: RecommendSettings, seed: int = 0) -> None:
        self.feature_names = feature_names
        self.settings = settings
        self.seed = seed
        self.members_: list[_Member] = []
        self.report_: RankerReport | None = None

    def fit(
        self,
        rows: CandidateRows,
        labels: np.ndarray,
        held_sizes: np.ndarray,
        k: int,
        *,
        stoppable: np.ndarray | None = None,
    ) -> Self:
        """`labels`: 1 where the candidate was picked next; `held_sizes`: held-out items per history (for
        nDCG's ideal, counting items the candidates missed); `stoppable`: the histories the early-stopping
        shares are drawn from (default: all)."""
        started = time.perf_counter()
        scores = []
        self.members_ = []
        for seed in range(self.seed, self.seed + self.settings.ranker.models):
            member, metrics = self._fit_one(rows, labels, held_sizes, k, stoppable, seed)
            self.members_.append(member)
            scores.append(metrics)
        mean = np.mean(scores, axis=0)
        self.report_ = RankerReport(
            users=len(held_sizes),
            rows=len(labels),
            positives=int(labels.sum()),
            trees=int(mean[0] * len(scores)),
            auc=round(float(mean[1]), 4),
            logloss=round(float(mean[2]), 4),
            ndcg=round(float(mean[3]), 4),
            seconds=round(time.perf_counter() - started, 1),
            models=len(scores),
        )
        return self

    def _fit_one(
        self,
        rows: CandidateRows,
        labels: np.ndarray,
        held_sizes: np.ndarray,
        k: int,
        stoppable: np.ndarray | None,
        seed: int,
    ) -> tuple[_Member, tuple[float, float, float, float]]:
        """One model stopped early on its own random share of the people, calibrated there; (trees, AUC,
        logloss, nDCG@k) measured there."""
        import lightgbm as lgb

        s = self.settings
        rng = np.random.default_rng(seed)
        stopping = rng.random(len(held_sizes)) < s.ranker.holdout
        if stoppable is not None:
            stopping &= stoppable
        stop_rows = stopping[rows.history]
        fit_rows = ~stop_rows & ((labels > 0) | (rng.random(len(labels)) < s.ranker.negatives))
        params = {
            "objective": "lambdarank",
            "learning_rate": s.ranker.learning_rate,
            "num_leaves": s.ranker.leaves,
            "min_child_samples": s.ranker.min_child_samples,
            "feature_fraction": s.ranker.feature_fraction,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "metric": "ndcg",
            "eval_at": [k],
            "num_threads": s.threads,
            "seed": seed,
            "verbose": -1,
        }
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
        booster = lgb.train(
            params,
            train,
            num_boost_round=s.ranker.max_trees,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(s.ranker.early_stopping, verbose=False)],
        )
        raw = np.asarray(booster.predict(rows.features[stop_rows], raw_score=True, num_threads=s.threads))
        member = _Member(booster, *_platt(raw, labels[stop_rows]), LeafContributions.of(booster))
        probability = 1.0 / (1.0 + np.exp(-(member.scale * raw + member.shift)))
        ndcg = _ndcg(rows.history[stop_rows], raw, labels[stop_rows], held_sizes, np.flatnonzero(stopping), k)
        return member, (
            float(booster.best_iteration or booster.current_iteration()),
            float(roc_auc_score(labels[stop_rows], raw)),
            float(log_loss(labels[stop_rows], probability, labels=[0, 1])),
            float(ndcg),
        )

    def margin(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Calibrated log-odds that each candidate is picked next (the models' mean)."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        total = np.zeros(len(features), dtype=np.float64)
        for m in self.members_:
            total += m.scale * np.asarray(m.booster.predict(features, raw_score=True, num_threads=threads)) + m.shift
        return total / len(self.members_)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """rows × (features + 1): each feature's share of the log-odds, the last column the base value;
        each row sums to `margin`."""
        total = np.zeros((len(features), len(self.feature_names) + 1), dtype=np.float64)
        for m in self.members_:
            total += m.scale * m.credits(m.booster, features)
            total[:, -1] += m.shift
        return total / len(self.members_)


def _platt(raw: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling of ranking scores into log-odds of being picked (scale, shift): a ranking objective
    orders well but its scores are no probabilities."""
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e4).fit(raw[:, None], labels)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


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
    validations: Sequence[ValidationSet],
    frame: pd.DataFrame,
    vectors: np.ndarray,
    terms: sp.csr_matrix,
    settings: RecommendSettings,
    k: int,
) -> LearnedRanker | None:
    """A ranker trained on the validation people's held-out items of every step (the first step, the latest,
    is also where it stops early and is measured: the one most like serving); None when the candidates hold
    fewer than `ranker_min_positives` of them (too little to learn from: fusion weights are used instead)."""
    if not validations or not validations[0].sources:
        return None
    n = settings.ranker.users
    parts: list[CandidateRows] = []
    labels: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    builder = None
    for validation in validations:
        histories = validation.histories[:n]
        masks = [position_mask(e, validation.data.n_items) for e in validation.exclusions()[:n]]
        builder = FeatureBuilder(validation.data, validation.sources, vectors, terms, frame, settings)
        rows = builder.build(histories, masks)
        offset = sum(len(size) for size in sizes)
        parts.append(CandidateRows(rows.history + offset, rows.positions, rows.features))
        labels.append(np.asarray(validation.targets[rows.history, rows.positions]).ravel().astype(np.float32))
        sizes.append(validation.sizes[:n])
    assert builder is not None
    label = np.concatenate(labels)
    if label.sum() < settings.ranker.min_positives:
        return None
    rows = CandidateRows(*(np.concatenate([getattr(p, f) for p in parts]) for f in CandidateRows.__annotations__))
    stoppable = np.arange(sum(len(size) for size in sizes)) < len(sizes[0])
    return LearnedRanker(builder.names, settings).fit(rows, label, np.concatenate(sizes), k, stoppable=stoppable)


def position_mask(positions: np.ndarray, n_items: int) -> np.ndarray:
    mask = np.zeros(n_items, dtype=bool)
    mask[positions] = True
    return mask
