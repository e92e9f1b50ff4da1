"""Which candidate sources exist and how settings turn into fitted ones."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sequential import SequentialSource
from shopfusion.recommend.sources import (
    EASE,
    CandidateSource,
    Complements,
    ContentSimilarity,
    ItemKNN,
    MatrixFactorization,
    Popularity,
    RepeatPurchase,
)
from shopfusion.settings import RecommendSettings

KNOWN_SOURCES = (
    "popularity",
    "trending",
    "repeat",
    "item_knn",
    "als",
    "bpr",
    "ease",
    "content",
    "complements",
    "sequential",
)


def make_source(
    name: str,
    vectors: np.ndarray,
    settings: RecommendSettings,
    sequential_epochs: int | None = None,
    terms: sp.csr_matrix | None = None,
) -> CandidateSource:
    s = settings
    match name:
        case "popularity":
            return Popularity(s.popularity_half_life_days)
        case "trending":
            return Popularity(s.trending_half_life_days, name="trending")
        case "repeat":
            return RepeatPurchase()
        case "item_knn":
            return ItemKNN(s.knn_neighbours)
        case "complements":
            return Complements(s.knn_neighbours)
        case "als" | "bpr":
            return MatrixFactorization(name, s.factors, s.mf_iterations, s.threads)
        case "ease":
            return EASE(s.ease_l2, s.ease_max_items, s.threads)
        case "content":
            return ContentSimilarity(s.knn_neighbours, s.threads).from_vectors(vectors)
        case "sequential":
            return SequentialSource(vectors, s.sequential, sequential_epochs, terms)
    raise ValueError(f"unknown recommendation source {name!r}; known: {', '.join(KNOWN_SOURCES)}")


def fit_sources(
    data: Interactions,
    vectors: np.ndarray,
    settings: RecommendSettings,
    *,
    next_items: Mapping[int, int] | None = None,
    sequential_epochs: int | None = None,
    terms: sp.csr_matrix | None = None,
) -> dict[str, CandidateSource]:
    """Fit every configured source; a source with nothing to learn from (EASE above its size limit,
    complements without order ids) is left out rather than serving empty lists. `next_items` (user row →
    the item picked next) lets the sequential model stop early on them; `sequential_epochs` (from such an
    earlier fit) trains it for exactly that many epochs instead; `terms` (items × terms) feed its term
    embeddings."""
    fitted: dict[str, CandidateSource] = {}
    for name in settings.sources:
        source = make_source(name, vectors, settings, sequential_epochs, terms)
        if isinstance(source, SequentialSource):
            source.fit(data, next_items)
        else:
            source.fit(data)
        if isinstance(source, EASE) and not source.fitted:
            continue
        if isinstance(source, Complements) and data.baskets.shape[0] == 0:
            continue
        fitted[name] = source
    return fitted


def sequential_epochs(sources: Mapping[str, CandidateSource]) -> int | None:
    """The number of epochs a validated sequential source chose, if there is one."""
    source = sources.get("sequential")
    if isinstance(source, SequentialSource) and source.model.report_ is not None:
        return max(1, source.model.report_.best_epoch)
    return None
