"""Learned search: the shop's judgements teach a fine-tuned bi-encoder, a cross-encoder and two LambdaMART rankers.

Pipeline per query: candidates from BM25, pretrained and fine-tuned dense retrieval (union, the `ltr_depth`
best by the served blend) → a first ranker over cheap features → the cross-encoder re-scores that ranker's top
`rerank_depth` → a second ranker adds the cross-encoder score and orders them. Every score decomposes into
per-feature contributions (the explanation). Features: search/ltr_features.py; training: search/training.py;
the trained files: search/trained_files.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from shopfusion.rank.cross_encoder import CrossEncoder
from shopfusion.rank.ltr import LambdaRankTrees
from shopfusion.search.ltr_features import Signals

# How each feature reads in an explanation (R6): the strongest positive contributions are named.
FEATURE_REASONS = {
    "bm25": "its words match the query",
    "bm25_rank": "its words match the query",
    "coverage": "it contains every query word",
    "title_coverage": "the query words are in its title",
    "phrase": "the title contains the query as typed",
    "dense": "close in meaning",
    "dense_rank": "close in meaning",
    "tuned": "close in meaning to what shoppers chose for such searches",
    "tuned_rank": "close in meaning to what shoppers chose for such searches",
    "blend": "a strong keyword and meaning match",
    "cross_encoder": "the re-ranker read it as a close match",
    "first_stage": "a strong keyword and meaning match",
    "prior": "often chosen for other searches",
}
CrossMemo = dict[tuple[str, int], float]  # (query, catalogue position) → cross-encoder score


@dataclass(frozen=True)
class LearnedHit:
    position: int
    score: float
    explain: Callable[[], dict[str, float]] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def contributions(self) -> dict[str, float]:
        """Feature → contribution; with "bias" they sum to `score`. Computed when asked: a page shows ten results
        of the hundred ranked, and the contributions cost more than the ranking itself."""
        return self.explain() if self.explain is not None else {}

    def reason(self) -> str:
        ranked = sorted(((v, k) for k, v in self.contributions.items() if k in FEATURE_REASONS and v > 0), reverse=True)
        reasons: list[str] = []
        for _, name in ranked:
            if FEATURE_REASONS[name] not in reasons:
                reasons.append(FEATURE_REASONS[name])
            if len(reasons) == 2:
                break
        return "; ".join(reasons) or "ranked by the learned model"


def ranked_hits(
    positions: np.ndarray, scores: np.ndarray, features: np.ndarray, ranker: LambdaRankTrees
) -> list[LearnedHit]:
    """Hits in the given order, each explained on demand by `ranker`'s contributions for its feature row."""
    labels = [*ranker.feature_names, "bias"]

    def explainer(row: np.ndarray) -> Callable[[], dict[str, float]]:
        def explain() -> dict[str, float]:
            values = ranker.contributions(row[None, :])[0]
            return {n: float(v) for n, v in zip(labels, values, strict=True)}

        return explain

    return [
        LearnedHit(int(p), float(s), explainer(row))
        for p, s, row in zip(positions.tolist(), scores.tolist(), features, strict=True)
    ]


class LearnedSearch:
    """Ranks with the trained models; without a cross-encoder and second ranker the first ranker's order is
    final."""

    def __init__(
        self,
        signals: Signals,
        first: LambdaRankTrees,
        cross: CrossEncoder | None = None,
        second: LambdaRankTrees | None = None,
        rerank_depth: int = 30,
        *,
        cross_memo: CrossMemo | None = None,
    ) -> None:
        """`cross_memo`: remembered cross-encoder scores (see `with_cross_memo`); None when serving."""
        self.signals, self.first, self.cross, self.second = signals, first, cross, second
        self.rerank_depth = rerank_depth
        self.cross_memo = cross_memo

    def with_cross_memo(self, scores: CrossMemo | None = None) -> LearnedSearch:
        """A copy that scores each (query, item) pair with the cross-encoder once however many stages ask for it,
        keeping the scores in `scores` (pairs already there are not scored again). For training and evaluation,
        which score the same pairs for several stages; serving keeps no memory (it would grow with every query)."""
        return LearnedSearch(
            self.signals,
            self.first,
            self.cross,
            self.second,
            self.rerank_depth,
            cross_memo={} if scores is None else scores,
        )

    def first_stage(self, query: str, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.order_first_stage(*self.signals.first_stage(query, mask))

    def order_first_stage(
        self, positions: np.ndarray, features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates and features best first by the first ranker, with its scores."""
        scores = self.first.raw(features) if len(positions) else np.zeros(0)
        order = np.lexsort((positions, -scores))
        return positions[order], features[order], scores[order]

    def cross_scores(self, query: str, positions: Sequence[int]) -> np.ndarray:
        """Cross-encoder scores of these candidates (each pair scored once with a memo)."""
        assert self.cross is not None
        texts = self.signals.texts
        if self.cross_memo is None:
            return self.cross.scores(query, [texts[p] for p in positions])
        memo = self.cross_memo
        todo = [p for p in dict.fromkeys(positions) if (query, p) not in memo]
        if todo:
            fresh = self.cross.scores(query, [texts[p] for p in todo])
            memo.update(zip(((query, p) for p in todo), fresh.tolist(), strict=True))
        return np.array([memo[(query, p)] for p in positions], dtype=np.float32)

    def second_stage_features(
        self, query: str, positions: np.ndarray, features: np.ndarray, scores: np.ndarray
    ) -> np.ndarray:
        cross = self.cross_scores(query, positions.tolist())
        return np.column_stack([features, cross, scores]).astype(np.float32)

    def rank(self, query: str, k: int | None = None, mask: np.ndarray | None = None) -> list[LearnedHit]:
        positions, features, scores = self.first_stage(query, mask)
        if self.cross is None or self.second is None or not len(positions):
            return ranked_hits(positions[:k], scores[:k], features[:k], self.first)
        top = min(self.rerank_depth, len(positions))
        head = self.second_stage_features(query, positions[:top], features[:top], scores[:top])
        head_scores = self.second.raw(head)
        order = np.lexsort((positions[:top], -head_scores))
        head_hits = ranked_hits(positions[:top][order], head_scores[order], head[order], self.second)
        # below the re-ranked head: first-stage order, scored below every head result
        floor = float(head_scores.min()) if top else 0.0
        tail_scores = floor - 1.0 - np.arange(len(positions) - top)
        tail = [LearnedHit(int(p), float(s)) for p, s in zip(positions[top:].tolist(), tail_scores, strict=True)]
        return [*head_hits, *tail][:k]
