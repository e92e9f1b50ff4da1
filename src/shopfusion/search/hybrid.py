"""Hybrid retrieval: BM25 and dense candidates fused by reciprocal rank or normalised score blending."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopfusion.encoders.base import TextEncoder
from shopfusion.index.lexical import LexicalIndex
from shopfusion.index.vector import ExactIndex, VectorIndex
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


def _top(scores: np.ndarray, k: int, mask: np.ndarray | None) -> np.ndarray:
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top[np.isfinite(scores[top])]


class HybridSearcher:
    def __init__(
        self, lexical: LexicalIndex, vectors: VectorIndex, encoder: TextEncoder, settings: SearchSettings
    ) -> None:
        self.lexical = lexical
        self.vectors = vectors
        self.encoder = encoder
        self.settings = settings

    def _semantic(self, query: str, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        q = self.encoder.encode([query])[0]
        if isinstance(self.vectors, ExactIndex):
            scores = self.vectors.all_scores(q)
            top = _top(scores, k, mask)
            return top, scores[top]
        positions, scores = self.vectors.search(q, k * 4 if mask is not None else k)
        if mask is not None:
            keep = mask[positions]
            positions, scores = positions[keep][:k], scores[keep][:k]
        return positions, scores

    def search(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> list[Hit]:
        n = self.settings.candidates
        lexical_scores = self.lexical.scores(query)
        lex_top = _top(np.where(lexical_scores > 0, lexical_scores, -np.inf), n, mask)
        sem_top, sem_scores = self._semantic(query, n, mask)
        lex_rank = {int(p): r for r, p in enumerate(lex_top, 1)}
        sem_rank = {int(p): r for r, p in enumerate(sem_top, 1)}
        sem_score = {int(p): float(s) for p, s in zip(sem_top, sem_scores, strict=True)}
        s = self.settings
        fused: dict[int, float] = {}
        if s.fusion == "rrf":
            for p in lex_rank.keys() | sem_rank.keys():
                fused[p] = s.lexical_weight / (s.rrf_k + lex_rank.get(p, 10**9)) + s.semantic_weight / (
                    s.rrf_k + sem_rank.get(p, 10**9)
                )
        else:
            lex_max = float(lexical_scores[lex_top[0]]) if len(lex_top) else 1.0
            for p in lex_rank.keys() | sem_rank.keys():
                fused[p] = s.lexical_weight * float(lexical_scores[p]) / max(lex_max, 1e-9) + (
                    s.semantic_weight * max(sem_score.get(p, 0.0), 0.0)
                )
        ranked = sorted(fused, key=lambda p: -fused[p])[:k]
        return [
            Hit(
                position=p,
                score=fused[p],
                lexical_score=float(lexical_scores[p]),
                semantic_score=sem_score.get(p, 0.0),
                lexical_rank=lex_rank.get(p),
                semantic_rank=sem_rank.get(p),
            )
            for p in ranked
        ]
