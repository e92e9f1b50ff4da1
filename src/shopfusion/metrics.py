"""Ranking metrics as defined in ../shared/data/README.md (the contract the independent checks use), and the
same binary-gain nDCG over many ranked lists at once, for validation while training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp


def discounts(n: int) -> np.ndarray:
    """The log2 discount of ranks 1..n: 1 / log2(rank + 1)."""
    return 1.0 / np.log2(np.arange(n) + 2)


def dcg(gains: Sequence[float]) -> float:
    return sum(g * d for g, d in zip(gains, discounts(len(gains)).tolist(), strict=True))


def ideal_binary_dcg(hits: np.ndarray, k: int) -> np.ndarray:
    """DCG of min(hits, k) items of gain 1 ranked first: the ideal of a binary target of `hits` items."""
    return np.concatenate([[0.0], np.cumsum(discounts(k))])[np.minimum(hits, k)]


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, float], k: int, *, ideal_hits: int | None = None) -> float:
    """Linear gain = grade, log2 discount, unjudged = 0.

    Ideal DCG comes from the query's own judged grades, or, for binary recommendation targets, from
    `ideal_hits` items of gain 1 (= min(|test items|, k)).
    """
    gains = [float(grades.get(item, 0.0)) for item in ranked[:k]]
    if ideal_hits is None:
        best = dcg(sorted((g for g in grades.values() if g > 0), reverse=True)[:k])
    else:
        best = float(ideal_binary_dcg(np.asarray(ideal_hits), k))
    return dcg(gains) / best if best > 0 else 0.0


def ndcg_of_hits(hits: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """`ndcg_at_k` with binary gains and `ideal_hits`, per row of a hit matrix: rows × ranks (1 where the item
    at that rank is relevant, at most k ranks read), `relevant` the number of relevant items per row (also
    those no list could reach)."""
    hits = hits[:, :k]
    found = (hits * discounts(hits.shape[1])).sum(axis=1)
    ideal = ideal_binary_dcg(relevant, k)
    return np.where(ideal > 0, found / np.maximum(ideal, 1e-12), 0.0)


def ndcg_rows(ranked: np.ndarray, targets: sp.csr_matrix, sizes: np.ndarray, k: int) -> np.ndarray:
    """Binary-gain nDCG@k per row of `ranked` (rows × k positions, -1 padding) against `targets` (rows ×
    positions, 1 where relevant); the ideal comes from min(sizes, k) hits, `sizes` counting every target
    item, also those outside the catalogue."""
    rows = np.repeat(np.arange(ranked.shape[0]), ranked.shape[1])
    cols = ranked.ravel()
    hits = np.zeros(len(cols), dtype=np.float64)
    valid = cols >= 0
    hits[valid] = np.asarray(targets[rows[valid], cols[valid]]).ravel()
    return ndcg_of_hits(hits.reshape(ranked.shape), sizes, k)


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
