"""Weighted score fusion: each source's scores scaled to [0, 1], weighted, summed, contributions kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shopfusion.recommend.sources import Candidates


@dataclass
class Fused:
    position: int
    score: float = 0.0
    contributions: dict[str, float] = field(default_factory=dict)
    because: dict[str, int] = field(default_factory=dict)  # source → the history item behind it


def fuse(candidates: Mapping[str, Candidates], weights: Mapping[str, float], k: int) -> list[Fused]:
    """Sum of weight × (score / the source's best score); sources absent from `weights` count 0."""
    table: dict[int, Fused] = {}
    for name, cands in candidates.items():
        weight = weights.get(name, 0.0)
        if weight <= 0 or len(cands.positions) == 0:
            continue
        best = float(cands.scores.max()) or 1.0
        for pos, score, because in zip(cands.positions, cands.scores, cands.because, strict=True):
            entry = table.setdefault(int(pos), Fused(int(pos)))
            share = weight * float(score) / best
            entry.contributions[name] = share
            entry.score += share
            if because >= 0:
                entry.because[name] = int(because)
    return sorted(table.values(), key=lambda f: -f.score)[:k]
