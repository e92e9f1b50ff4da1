"""Ranking metrics as defined in ../shared/data/README.md (the contract the independent checks use)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, float], k: int, *, ideal_hits: int | None = None) -> float:
    """Linear gain = grade, log2 discount, unjudged = 0.

    Ideal DCG comes from the query's own judged grades, or, for binary recommendation targets, from
    `ideal_hits` items of gain 1 (= min(|test items|, k)).
    """
    gains = [float(grades.get(item, 0.0)) for item in ranked[:k]]
    if ideal_hits is None:
        ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    else:
        ideal = [1.0] * min(ideal_hits, k)
    best = dcg(ideal)
    return dcg(gains) / best if best > 0 else 0.0


def recall_at_k(ranked: Sequence[str], grades: Mapping[str, float], k: int, *, cap_at_k: bool = False) -> float:
    """Relevant = grade > 0. `cap_at_k` divides by min(|relevant|, k) (the recommendation contract)."""
    relevant = {item for item, g in grades.items() if g > 0}
    if not relevant:
        return 0.0
    hits = sum(1 for item in ranked[:k] if item in relevant)
    return hits / (min(len(relevant), k) if cap_at_k else len(relevant))


def mrr_at_k(ranked: Sequence[str], grades: Mapping[str, float], k: int) -> float:
    for rank, item in enumerate(ranked[:k], 1):
        if grades.get(item, 0.0) > 0:
            return 1.0 / rank
    return 0.0
