"""Hybrid retrieval: BM25 and dense candidates fused by reciprocal rank or normalised score blending."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from shopfusion.encoders.base import TextEncoder
from shopfusion.index.lexical import LexicalIndex
from shopfusion.index.vector import VectorIndex
from shopfusion.rank.candidates import Candidates
from shopfusion.rank.fusion import reciprocal_rank
from shopfusion.settings import SearchSettings


@dataclass(frozen=True)
class Hit:
    """One result position with each signal's contribution: the start of every search explanation."""

    position: int
    score: float
    lexical_score: float
    semantic_score: float
    lexical_rank: int | None
    semantic_rank: int | None
    fused_rank: int


def fuse(
    lexical: Candidates, semantic: Candidates, settings: SearchSettings, method: str | None = None
) -> dict[int, float]:
    """Fused score of every candidate of either list.

    rrf: Σ weight × (rrf_k + 1) / (rrf_k + rank); blend: Σ weight × min-max-normalised score (absent from a list = 0).
    """
    weighted = ((lexical, settings.lexical_weight), (semantic, settings.semantic_weight))
    fused: dict[int, float] = {}
    for cands, weight in weighted:
        values = fusion_values(cands, weight, settings, method)
        for position, value in zip(cands.positions.tolist(), values.tolist(), strict=True):
            fused[position] = fused.get(position, 0.0) + value
    return fused


def fusion_values(cands: Candidates, weight: float, settings: SearchSettings, method: str | None = None) -> np.ndarray:
    """One list's share of the fused score of each of its candidates."""
    if (method or settings.fusion) == "rrf":
        return weight * reciprocal_rank(len(cands.positions), settings.rrf_k).astype(np.float64)
    return weight * cands.normalised()


class QueryVectors:
    """Encoded queries, the most recent `size` kept in memory: repeated queries are most traffic, and encoding
    is most of a search's time. Shared by the searchers over one encoder, safe across the API's threads."""

    def __init__(self, encoder: TextEncoder, size: int) -> None:
        self.encoder, self.size = encoder, size
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, query: str) -> np.ndarray:
        with self._lock:
            vector = self._recent.get(query)
            if vector is not None:
                self._recent.move_to_end(query)
                return vector
        vector = self.encoder.encode([query])[0]
        with self._lock:
            self._recent[query] = vector
            while len(self._recent) > self.size:
                self._recent.popitem(last=False)
        return vector


class HybridSearcher:
    def __init__(
        self,
        lexical: LexicalIndex,
        vectors: VectorIndex,
        encoder: TextEncoder,
        settings: SearchSettings,
        query_vectors: QueryVectors | None = None,
    ) -> None:
        """`query_vectors`: the recent query vectors of another searcher over the same encoder, to share."""
        self.lexical = lexical
        self.vectors = vectors
        self.encoder = encoder
        self.settings = settings
        self.query_vectors = query_vectors or QueryVectors(encoder, settings.query_vector_cache)

    def query_vector(self, query: str) -> np.ndarray:
        return self.query_vectors(query)

    def lexical_candidates(
        self, query: str, mask: np.ndarray | None = None, scores: np.ndarray | None = None
    ) -> Candidates:
        """`scores`: the query's BM25 scores over the catalogue when the caller has them already."""
        scores = self.lexical.scores(query) if scores is None else scores
        return Candidates.top(np.where(scores > 0, scores, -np.inf), self.settings.candidates, mask)

    def with_indexes(self, lexical: LexicalIndex, vectors: VectorIndex) -> HybridSearcher:
        """The same searcher over other indexes (the built ones plus item writes), sharing the query vectors."""
        return HybridSearcher(lexical, vectors, self.encoder, self.settings, self.query_vectors)

    def with_settings(self, settings: SearchSettings) -> HybridSearcher:
        """The same indexes and query vectors with other settings (e.g. fusion weights learned in evaluation)."""
        return HybridSearcher(self.lexical, self.vectors, self.encoder, settings, self.query_vectors)

    def semantic_candidates(self, query: str, mask: np.ndarray | None = None) -> Candidates:
        return self.nearest(self.query_vector(query), mask)

    def nearest(self, q: np.ndarray, mask: np.ndarray | None = None) -> Candidates:
        """The `candidates` rows nearest to vector q (only where `mask` is true)."""
        n = self.settings.candidates
        scores = self.vectors.all_scores(q)
        if scores is not None:
            return Candidates.top(scores, n, mask)
        if mask is None:
            return Candidates(*self.vectors.search(q, n))
        allowed = np.flatnonzero(mask)
        if len(allowed) <= self.settings.exact_vector_max_items:
            # A filtered subset small enough for an exact scan: HNSW would miss a selective filter's items.
            top = Candidates.top(self.vectors.subset_scores(q, allowed), n)
            return Candidates(allowed[top.positions], top.scores)
        positions, scores = self.vectors.search(q, n * 4)  # HNSW cannot filter inside the graph: widen
        keep = mask[positions]
        return Candidates(positions[keep][:n], scores[keep][:n])

    def search(
        self, query: str, k: int | None = 10, mask: np.ndarray | None = None, method: str | None = None
    ) -> list[Hit]:
        """The k best fused hits (None: every candidate); `method` overrides the configured fusion ('rrf' | 'blend')."""
        lexical = self.lexical_candidates(query, mask)
        semantic = self.semantic_candidates(query, mask)
        fused = fuse(lexical, semantic, self.settings, method)
        lex_rank = {p: r for r, p in enumerate(lexical.positions.tolist(), 1)}
        lex_score = dict(zip(lexical.positions.tolist(), lexical.scores.tolist(), strict=True))
        sem_rank = {p: r for r, p in enumerate(semantic.positions.tolist(), 1)}
        sem_score = dict(zip(semantic.positions.tolist(), semantic.scores.tolist(), strict=True))
        ranked = sorted(fused, key=lambda p: (-fused[p], p))[:k]
        return [
            Hit(
                position=p,
                score=fused[p],
                lexical_score=lex_score.get(p, 0.0),
                semantic_score=sem_score.get(p, 0.0),
                lexical_rank=lex_rank.get(p),
                semantic_rank=sem_rank.get(p),
                fused_rank=rank,
            )
            for rank, p in enumerate(ranked, 1)
        ]
