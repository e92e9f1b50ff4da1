"""The one candidate-list type: what a retriever or a recommendation source hands to fusion and ranking."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _no_reasons() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Candidates:
    """Catalogue positions best first, with the producer's raw scores and, per candidate, the history item
    that contributed most to it (-1: none; empty: the producer names none, e.g. a search retriever)."""

    positions: np.ndarray
    scores: np.ndarray
    because: np.ndarray = field(default_factory=_no_reasons)

    @classmethod
    def top(cls, scores: np.ndarray, n: int, mask: np.ndarray | None = None) -> Candidates:
        """The n best finite scores (ties by position), optionally only where `mask` is true."""
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        n = min(n, len(scores))
        if n <= 0:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.lexsort((top, -scores[top]))]
        top = top[np.isfinite(scores[top])]
        return cls(top.astype(np.int64), scores[top])

    def reasons(self) -> np.ndarray:
        """`because` with one entry per candidate (-1 where the producer named none)."""
        if len(self.because) == len(self.positions):
            return self.because
        return np.full(len(self.positions), -1, dtype=np.int64)

    def normalised(self) -> np.ndarray:
        """Scores min-max scaled over this list to [0, 1]: the best candidate 1, the last 0 (a single one 1)."""
        if len(self.scores) == 0:
            return self.scores
        low, high = float(self.scores.min()), float(self.scores.max())
        if high - low <= 1e-12:
            return np.ones_like(self.scores)
        return (self.scores - low) / (high - low)
