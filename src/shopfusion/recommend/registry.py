"""Which candidate sources exist and how settings turn into fitted ones."""

from __future__ import annotations

import numpy as np

from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sequential import SequentialConfig, SequentialSource
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


def make_source(name: str, vectors: np.ndarray, settings: RecommendSettings) -> CandidateSource:
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
            config = SequentialConfig(
                dim=s.sequential_dim,
                max_len=s.sequential_max_len,
                max_epochs=s.sequential_max_epochs,
                max_seconds=s.sequential_max_seconds,
            )
            return SequentialSource(vectors, config)
    raise ValueError(f"unknown recommendation source {name!r}; known: {', '.join(KNOWN_SOURCES)}")


def fit_sources(data: Interactions, vectors: np.ndarray, settings: RecommendSettings) -> dict[str, CandidateSource]:
    """Fit every configured source; a source with nothing to learn from (EASE above its size limit,
    complements without order ids) is left out rather than serving empty lists."""
    fitted: dict[str, CandidateSource] = {}
    for name in settings.sources:
        source = make_source(name, vectors, settings).fit(data)
        if isinstance(source, EASE) and not source.fitted:
            continue
        if isinstance(source, Complements) and data.baskets.shape[0] == 0:
            continue
        fitted[name] = source
    return fitted
