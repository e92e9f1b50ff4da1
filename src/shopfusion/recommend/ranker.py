"""The learned recommendation ranker as served: LightGBM LambdaRank models (rank/ltr.py) over each person's
candidate rows (recommend/ranker_features.py), each model's scores turned into calibrated log-odds of being
picked next by Platt scaling, the models averaged. Per-feature contributions (path credits read from the
leaves a candidate lands in, scaled the same way; see rank/trees.py) add up to that log-odds and are what
explanations quote. Training is in recommend/ranker_training.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shopfusion.rank.ltr import LambdaRankTrees


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


@dataclass(frozen=True)
class RankerMember:
    """One LambdaRank model and the Platt scaling of its raw scores into log-odds: scale * raw + shift."""

    trees: LambdaRankTrees
    scale: float
    shift: float


class LearnedRanker:
    """Calibrated log-odds that a candidate is picked next (`margin`) and each feature's share of them
    (`contributions`): the mean over several models, as with few positives one model's ranking is noisy."""

    def __init__(self, feature_names: Sequence[str], members: Sequence[RankerMember], report: RankerReport) -> None:
        self.feature_names = list(feature_names)
        self.members = list(members)
        self.report = report

    def margin(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Calibrated log-odds that each candidate is picked next (the models' mean)."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        total = np.zeros(len(features), dtype=np.float64)
        for m in self.members:
            total += m.scale * m.trees.raw(features, threads=threads) + m.shift
        return total / len(self.members)

    def contributions(self, features: np.ndarray) -> np.ndarray:
        """rows × (features + 1): each feature's share of the log-odds, the last column the base value;
        each row sums to `margin`."""
        total = np.zeros((len(features), len(self.feature_names) + 1), dtype=np.float64)
        for m in self.members:
            total += m.scale * m.trees.contributions(features)
            total[:, -1] += m.shift
        return total / len(self.members)
