"""Training the learned recommendation ranker on held-out validation people (recommend/tuning.py): LightGBM
LambdaRank learns to order each person's candidates so that their held-out next interactions come first,
stopping early on nDCG@k of a further held-out share of people; Platt scaling on that share turns its scores
into calibrated log-odds of being picked (AUC and logloss are reported there)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import log_loss, roc_auc_score

from shopfusion.metrics import ndcg_of_hits
from shopfusion.rank.ltr import LambdaRankTrees, RankingData
from shopfusion.recommend.ranker import LearnedRanker, RankerMember, RankerReport
from shopfusion.recommend.ranker_features import CandidateRows, FeatureBuilder
from shopfusion.recommend.tuning import ValidationSet
from shopfusion.settings import RecommendSettings


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
    fewer than `ranker.min_positives` of them (too little to learn from: fusion weights are used instead)."""
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
    return fit_ranker(builder.names, rows, label, np.concatenate(sizes), k, settings, stoppable=stoppable)


def fit_ranker(
    feature_names: Sequence[str],
    rows: CandidateRows,
    labels: np.ndarray,
    held_sizes: np.ndarray,
    k: int,
    settings: RecommendSettings,
    *,
    stoppable: np.ndarray | None = None,
    seed: int = 0,
) -> LearnedRanker:
    """`ranker.models` models (seeds seed, seed + 1, ...), each stopped early on a different share of the
    people: with few positives the stopping point of one model is noisy. `labels`: 1 where the candidate
    was picked next; `held_sizes`: held-out items per history (for nDCG's ideal, counting items the
    candidates missed); `stoppable`: the histories the early-stopping shares are drawn from (default: all)."""
    started = time.perf_counter()
    members, scores = [], []
    for member_seed in range(seed, seed + settings.ranker.models):
        member, metrics = _fit_member(feature_names, rows, labels, held_sizes, k, settings, stoppable, member_seed)
        members.append(member)
        scores.append(metrics)
    mean = np.mean(scores, axis=0)
    report = RankerReport(
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
    return LearnedRanker(feature_names, members, report)


def _fit_member(
    feature_names: Sequence[str],
    rows: CandidateRows,
    labels: np.ndarray,
    held_sizes: np.ndarray,
    k: int,
    settings: RecommendSettings,
    stoppable: np.ndarray | None,
    seed: int,
) -> tuple[RankerMember, tuple[float, float, float, float]]:
    """One model stopped early on its own random share of the people, calibrated there; (trees, AUC,
    logloss, nDCG@k) measured there."""
    rng = np.random.default_rng(seed)
    stopping = rng.random(len(held_sizes)) < settings.ranker.holdout
    if stoppable is not None:
        stopping &= stoppable
    stop_rows = stopping[rows.history]
    fit_rows = ~stop_rows & ((labels > 0) | (rng.random(len(labels)) < settings.ranker.negatives))
    fit_on = RankingData(rows.features[fit_rows], labels[fit_rows], _group_sizes(rows.history[fit_rows]))
    stop_on = RankingData(rows.features[stop_rows], labels[stop_rows], _group_sizes(rows.history[stop_rows]))
    trees = LambdaRankTrees.fit(
        settings.ranker, feature_names, fit_on, stop_on, eval_at=k, seed=seed, threads=settings.threads
    )
    trees.contributions(stop_on.features[:1])  # reads the leaves' credits now: a saved model carries them
    raw = trees.raw(stop_on.features, threads=settings.threads)
    member = RankerMember(trees, *_platt(raw, stop_on.grades))
    probability = 1.0 / (1.0 + np.exp(-(member.scale * raw + member.shift)))
    ndcg = _ndcg(rows.history[stop_rows], raw, stop_on.grades, held_sizes, np.flatnonzero(stopping), k)
    return member, (
        float(trees.trees),
        float(roc_auc_score(stop_on.grades, raw)),
        float(log_loss(stop_on.grades, probability, labels=[0, 1])),
        ndcg,
    )


def _platt(raw: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling of ranking scores into log-odds of being picked (scale, shift): a ranking objective
    orders well but its scores are no probabilities."""
    from sklearn.linear_model import LogisticRegression

    platt = LogisticRegression(C=1e4).fit(raw[:, None], labels)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


def _group_sizes(history: np.ndarray) -> np.ndarray:
    """Sizes of the runs of equal values (rows are grouped by history)."""
    if len(history) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, history[1:] != history[:-1]])
    return np.diff(np.r_[starts, len(history)])


def _ndcg(
    history: np.ndarray, margins: np.ndarray, labels: np.ndarray, held_sizes: np.ndarray, users: np.ndarray, k: int
) -> float:
    """Mean binary nDCG@k over `users` of their candidates ranked by margin; ideal = min(held items, k) hits."""
    hits = np.zeros((len(users), k), dtype=np.float64)
    bounds = np.searchsorted(history, users, side="left"), np.searchsorted(history, users, side="right")
    for row, (start, end) in enumerate(zip(*bounds, strict=True)):
        order = np.argsort(-margins[start:end], kind="stable")[:k]
        hits[row, : len(order)] = labels[start:end][order]
    return sum(ndcg_of_hits(hits, held_sizes[users], k).tolist()) / max(len(users), 1)


def position_mask(positions: np.ndarray, n_items: int) -> np.ndarray:
    mask = np.zeros(n_items, dtype=bool)
    mask[positions] = True
    return mask
