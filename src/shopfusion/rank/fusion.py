"""Fusion of candidate sources: each source's candidates get a share (score relative to the source's best,
or reciprocal rank), shares are weighted and summed, and every source's contribution is kept for the
explanation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from shopfusion.rank.candidates import Candidates

FusionMethod = Literal["weighted", "rrf"]


@dataclass
class Fused:
    position: int
    score: float = 0.0
    contributions: dict[str, float] = field(default_factory=dict)
    because: dict[str, int] = field(default_factory=dict)  # source → the history item behind it


def reciprocal_rank(count: int, rrf_k: int = 60) -> np.ndarray:
    """Reciprocal rank fusion's share of ranks 1..count: (rrf_k + 1) / (rrf_k + rank), so the first is 1."""
    return ((rrf_k + 1) / (rrf_k + np.arange(1, count + 1))).astype(np.float32)


def shares(scores: np.ndarray, method: FusionMethod = "weighted", rrf_k: int = 60) -> np.ndarray:
    """Per-candidate share in [0, 1] of one source's list (sorted best first): the same rule serves fusion at
    request time and the vectorised weight search."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.float32)
    if method == "rrf":
        return reciprocal_rank(len(scores), rrf_k)
    best = float(scores.max()) or 1.0
    return (scores / best).astype(np.float32)


def fuse(
    candidates: Mapping[str, Candidates],
    weights: Mapping[str, float],
    k: int,
    method: FusionMethod = "weighted",
    rrf_k: int = 60,
) -> list[Fused]:
    """Sum of weight × share; sources absent from `weights` count 0. Best first, at most k."""
    table: dict[int, Fused] = {}
    for name, cands in candidates.items():
        weight = weights.get(name, 0.0)
        if weight <= 0 or len(cands.positions) == 0:
            continue
        for pos, share, because in zip(
            cands.positions.tolist(),
            shares(cands.scores, method, rrf_k).tolist(),
            cands.reasons().tolist(),
            strict=True,
        ):
            entry = table.get(pos)
            if entry is None:
                entry = table[pos] = Fused(pos)
            entry.contributions[name] = weight * share
            entry.score += weight * share
            if because >= 0:
                entry.because[name] = because
    return sorted(table.values(), key=lambda f: (-f.score, f.position))[:k]
