"""Learning to rank: LightGBM LambdaMART over per-candidate features, with per-feature contributions read
from the leaves (rank/trees.py, as the recommendation ranker's).

Graded judgements become integer relevance levels whose gains are the grades themselves, so the objective
optimises exactly the linear-gain nDCG the evaluation reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import lightgbm as lgb
import numpy as np

from shopfusion.rank.trees import LeafContributions
from shopfusion.workspace import write_text_atomic

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


class LambdaMartRanker:
    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        max_rounds: int = 500,
        min_data_in_leaf: int = 50,
        seed: int = 13,
    ) -> None:
        self.feature_names = list(feature_names)
        self.params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "num_leaves": num_leaves,
            "learning_rate": learning_rate,
            "min_data_in_leaf": min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.9,
            "bagging_freq": 1,
            "seed": seed,
            "num_threads": 2,
            "verbosity": -1,
        }
        self.max_rounds = max_rounds
        self.booster: lgb.Booster | None = None
        self.validation_ndcg: float | None = None
        self._credits: LeafContributions | None = None

    def fit(self, train: RankingData, validation: RankingData) -> Self:
        """Boosting rounds chosen by early stopping on the validation queries' nDCG@10."""
        levels, gains = grade_levels(np.concatenate([train.grades, validation.grades]))
        n = len(train.grades)
        params = {**self.params, "label_gain": gains}
        train_set = lgb.Dataset(train.features, levels[:n], group=train.groups, feature_name=self.feature_names)
        valid_set = lgb.Dataset(validation.features, levels[n:], group=validation.groups, reference=train_set)
        self.booster = lgb.train(
            params,
            train_set,
            num_boost_round=self.max_rounds,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(30, verbose=False)],
        )
        self._credits = None
        self.validation_ndcg = float(self.booster.best_score["valid_0"]["ndcg@10"])
        return self

    def _booster(self) -> lgb.Booster:
        if self.booster is None:
            raise RuntimeError("the ranker is not fitted")
        return self.booster

    def predict(self, features: np.ndarray) -> np.ndarray:
        booster = self._booster()
        return np.asarray(booster.predict(features, num_iteration=booster.best_iteration), dtype=np.float64)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """Per-row feature contributions (path credits of the leaves each row lands in) plus a last column
        for the base value: each row sums to `predict` of that row."""
        booster = self._booster()
        if self._credits is None:  # computed once per trained (or loaded) model
            self._credits = LeafContributions.of(booster)
        return self._credits(booster, features)

    def importance(self) -> dict[str, float]:
        gains = self._booster().feature_importance(importance_type="gain")
        total = float(gains.sum()) or 1.0
        return {name: round(float(g) / total, 4) for name, g in zip(self.feature_names, gains, strict=True)}

    def save(self, path: Path) -> None:
        booster = self._booster()
        write_text_atomic(path, booster.model_to_string(num_iteration=booster.best_iteration))

    @classmethod
    def load(cls, path: Path) -> Self:
        booster = lgb.Booster(model_str=path.read_text())
        ranker = cls(booster.feature_name())
        ranker.booster = booster
        return ranker
