"""Learning to rank: one LightGBM LambdaRank model over per-candidate features, for search and
recommendation alike, its trees set by a `TreeRankerSettings` section; per-feature contributions are read
from the leaves (rank/trees.py).

Graded judgements become integer relevance levels whose gains are the grades themselves (`grade_levels`),
so the objective optimises exactly the linear-gain nDCG the evaluation reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import lightgbm as lgb
import numpy as np

from shopfusion.rank.trees import LeafContributions
from shopfusion.settings import TreeRankerSettings

MAX_LEVELS = 31  # LightGBM's lambdarank accepts at most this many relevance levels by default


@dataclass(frozen=True)
class RankingData:
    """Feature rows of candidates grouped by query (rows of a query are consecutive), with their grades."""

    features: np.ndarray
    grades: np.ndarray
    groups: np.ndarray  # rows per query, in order

    @classmethod
    def concat(cls, parts: Sequence[tuple[np.ndarray, np.ndarray]], width: int) -> RankingData:
        """From one (features, grades) pair per query; queries without candidates are left out."""
        kept = [(f, g) for f, g in parts if len(g)]
        if not kept:
            return cls(np.zeros((0, width), dtype=np.float32), np.zeros(0), np.zeros(0, dtype=np.int64))
        return cls(
            np.vstack([f for f, _ in kept]).astype(np.float32),
            np.concatenate([g for _, g in kept]),
            np.array([len(g) for _, g in kept], dtype=np.int64),
        )


def grade_levels(grades: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Integer levels for LightGBM and the gain of each level (= the grade; ungraded/negative = 0)."""
    clipped = np.clip(grades, 0.0, None)
    values = np.unique(np.round(clipped, 4))
    if len(values) > MAX_LEVELS:  # too many distinct grades: quantise to evenly spaced levels
        values = np.linspace(0.0, float(values.max()), MAX_LEVELS)
    values = np.union1d([0.0], values)
    levels = np.abs(clipped[:, None] - values[None, :]).argmin(axis=1)
    return levels.astype(np.int32), [float(v) for v in values]


def lightgbm_names(names: Sequence[str]) -> list[str]:
    """Feature names LightGBM accepts (it rejects some punctuation, ':' among them)."""
    return [n.replace(":", "__") for n in names]


class LambdaRankTrees:
    """A trained LambdaRank model: gradient-boosted trees, stopped early on a validation set's nDCG, that
    score candidates (`raw`) and explain each score (`contributions`). Holds only the booster and plain
    values, so a pickled or saved model carries no settings object."""

    def __init__(
        self, booster: lgb.Booster, feature_names: Sequence[str], validation_ndcg: float | None = None
    ) -> None:
        self.booster = booster
        self.feature_names = list(feature_names)
        self.validation_ndcg = validation_ndcg
        self._credits: LeafContributions | None = None

    @classmethod
    def fit(
        cls,
        settings: TreeRankerSettings,
        feature_names: Sequence[str],
        train: RankingData,
        validation: RankingData,
        *,
        eval_at: int,
        seed: int,
        threads: int,
        label_gain: Sequence[float] | None = None,
    ) -> Self:
        """Trees added until `settings.early_stopping` rounds bring no gain in the validation queries'
        nDCG@`eval_at`. Grades are integer relevance levels, `label_gain` the gain of each (LightGBM's
        2^level - 1 when None)."""
        params: dict[str, Any] = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [eval_at],
            "num_leaves": settings.leaves,
            "learning_rate": settings.learning_rate,
            "min_data_in_leaf": settings.min_child_samples,
            "feature_fraction": settings.feature_fraction,
            "bagging_fraction": settings.bagging_fraction,
            "bagging_freq": 1,
            "seed": seed,
            "num_threads": threads,
            "verbosity": -1,
        }
        if label_gain is not None:
            params["label_gain"] = list(label_gain)
        names = lightgbm_names(feature_names)
        train_set = lgb.Dataset(train.features, train.grades, group=train.groups, feature_name=names)
        valid_set = lgb.Dataset(validation.features, validation.grades, group=validation.groups, reference=train_set)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=settings.max_trees,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(settings.early_stopping, verbose=False)],
        )
        return cls(booster, feature_names, float(booster.best_score["valid_0"][f"ndcg@{eval_at}"]))

    @classmethod
    def fit_graded(
        cls,
        settings: TreeRankerSettings,
        feature_names: Sequence[str],
        train: RankingData,
        validation: RankingData,
        *,
        eval_at: int,
        seed: int,
        threads: int,
    ) -> Self:
        """`fit` on real-valued grades (search judgements), the gain of each grade the grade itself."""
        levels, gains = grade_levels(np.concatenate([train.grades, validation.grades]))
        n = len(train.grades)
        return cls.fit(
            settings,
            feature_names,
            RankingData(train.features, levels[:n], train.groups),
            RankingData(validation.features, levels[n:], validation.groups),
            eval_at=eval_at,
            seed=seed,
            threads=threads,
            label_gain=gains,
        )

    @property
    def trees(self) -> int:
        """Trees the predictions use (the best iteration when training stopped early)."""
        best = int(self.booster.best_iteration)  # -1 or 0 where it did not stop early, or was loaded
        return best if best > 0 else int(self.booster.current_iteration())

    def raw(self, features: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Raw ranking scores (on LightGBM's default threads when `threads` is None)."""
        extra: dict[str, Any] = {} if threads is None else {"num_threads": threads}
        scores = self.booster.predict(features, num_iteration=self.booster.best_iteration, raw_score=True, **extra)
        return np.asarray(scores, dtype=np.float64)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per-row feature contributions (path credits of the leaves each row lands in) plus a last column
        for the base value: each row sums to `raw` of that row."""
        if self._credits is None:  # computed once per trained (or loaded) model
            self._credits = LeafContributions.of(self.booster)
        return self._credits(self.booster, features)

    def importance(self) -> dict[str, float]:
        """Each feature's share of the total split gain."""
        gains = self.booster.feature_importance(importance_type="gain")
        total = float(gains.sum()) or 1.0
        return {name: round(float(g) / total, 4) for name, g in zip(self.feature_names, gains, strict=True)}

    def to_string(self) -> str:
        """The trees the predictions use, in LightGBM's text format."""
        return str(self.booster.model_to_string(num_iteration=self.booster.best_iteration))

    @classmethod
    def from_string(cls, text: str, feature_names: Sequence[str] | None = None) -> Self:
        """The model `to_string` wrote; `feature_names` default to the LightGBM-safe names stored with it."""
        booster = lgb.Booster(model_str=text)
        return cls(booster, booster.feature_name() if feature_names is None else feature_names)
