"""What the learned search's rankers read per (query, candidate): retrieval scores and ranks from BM25, the
pretrained and the fine-tuned bi-encoder, the served blend, word matches with the title, and an item prior."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shopfusion.encoders.base import TextEncoder
from shopfusion.index.text import analyze
from shopfusion.index.vector import VectorIndex
from shopfusion.rank.candidates import Candidates
from shopfusion.search.hybrid import HybridSearcher, fusion_values

FIRST_STAGE = (
    "bm25",
    "bm25_rank",
    "dense",
    "dense_rank",
    "tuned",
    "tuned_rank",
    "blend",
    "coverage",
    "title_coverage",
    "phrase",
    "query_terms",
    "title_terms",
    "prior",
)
SECOND_STAGE = (*FIRST_STAGE, "cross_encoder", "first_stage")
MISSING = np.nan  # LightGBM learns a direction for missing values (not retrieved by that retriever)


@dataclass
class Tuned:
    """The fine-tuned bi-encoder and the catalogue's vectors from it."""

    encoder: TextEncoder
    index: VectorIndex


def _ranks(cands: Candidates, positions: np.ndarray) -> np.ndarray:
    """1-based rank of each position in a retriever's list; missing where it did not retrieve it."""
    if not len(cands.positions):
        return np.full(len(positions), MISSING, dtype=np.float32)
    order = np.argsort(cands.positions, kind="stable")
    sorted_positions = cands.positions[order]
    at = np.searchsorted(sorted_positions, positions).clip(max=len(sorted_positions) - 1)
    return np.where(sorted_positions[at] == positions, order[at] + 1.0, MISSING).astype(np.float32)


class Signals:
    """Everything per (query, candidate) that the rankers read, computed over the whole catalogue's indexes."""

    def __init__(
        self,
        searcher: HybridSearcher,
        titles: Sequence[str],
        texts: Sequence[str],
        prior: np.ndarray,
        tuned: Tuned | None = None,
        depth: int = 100,
    ) -> None:
        """`titles` feed the word-match features, `texts` (what the encoders read) the cross-encoder."""
        self.searcher, self.titles, self.texts = searcher, list(titles), list(texts)
        self.prior, self.tuned, self.depth = prior, tuned, depth
        self.title_tokens = [frozenset(analyze(t)) for t in self.titles]
        self.title_norm = [" ".join(t.lower().split()) for t in self.titles]
        self.tuned_searcher = (
            None if tuned is None else HybridSearcher(searcher.lexical, tuned.index, tuned.encoder, searcher.settings)
        )

    def tuned_candidates(self, query: str, mask: np.ndarray | None = None) -> Candidates | None:
        return None if self.tuned_searcher is None else self.tuned_searcher.semantic_candidates(query, mask)

    def first_stage(self, query: str, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidate positions (the `depth` best by the served blend over all retrievers) and their features.
        Each index scores the query once: its scores serve both the candidates and the features."""
        lex_scores = self.searcher.lexical.scores(query)
        q_vec = self.searcher.query_vector(query)
        lexical = self.searcher.lexical_candidates(query, mask, lex_scores)
        semantic = self.searcher.nearest(q_vec, mask)
        retrieved = [
            (lexical, self.searcher.settings.lexical_weight),
            (semantic, self.searcher.settings.semantic_weight),
        ]
        t_vec, tuned = None, None
        if self.tuned_searcher is not None:  # fine-tuned dense shares the semantic weight with the pretrained one
            t_vec = self.tuned_searcher.query_vector(query)
            tuned = self.tuned_searcher.nearest(t_vec, mask)
            retrieved.append((tuned, self.searcher.settings.semantic_weight))
        pooled = np.concatenate([c.positions for c, _ in retrieved])
        settings = self.searcher.settings
        values = np.concatenate([fusion_values(c, w, settings) for c, w in retrieved]).astype(np.float64)
        union, inverse = np.unique(pooled, return_inverse=True)
        blend = np.bincount(inverse, weights=values, minlength=len(union))
        best = np.lexsort((union, -blend))[: self.depth]  # best blend first, ties by position
        positions = union[best].astype(np.int64)
        rows = np.full((len(positions), len(FIRST_STAGE)), MISSING, dtype=np.float32)
        if not len(positions):
            return positions, rows
        column = {name: i for i, name in enumerate(FIRST_STAGE)}
        rows[:, column["bm25"]] = lex_scores[positions]
        rows[:, column["bm25_rank"]] = _ranks(lexical, positions)
        rows[:, column["dense"]] = self.searcher.vectors.subset_scores(q_vec, positions)
        rows[:, column["dense_rank"]] = _ranks(semantic, positions)
        if tuned is not None and t_vec is not None and self.tuned_searcher is not None:
            rows[:, column["tuned"]] = self.tuned_searcher.vectors.subset_scores(t_vec, positions)
            rows[:, column["tuned_rank"]] = _ranks(tuned, positions)
        rows[:, column["blend"]] = blend[best]
        rows[:, column["prior"]] = self.prior[positions]
        self._word_features(query, positions, rows, column)
        return positions, rows

    def _word_features(self, query: str, positions: np.ndarray, rows: np.ndarray, column: Mapping[str, int]) -> None:
        q_tokens = frozenset(analyze(query))
        q_norm = " ".join(query.lower().split())
        titles = [self.title_tokens[p] for p in positions.tolist()]
        matched = np.array([len(q_tokens & t) for t in titles], dtype=np.float32) / max(len(q_tokens), 1)
        rows[:, column["query_terms"]] = len(q_tokens)
        rows[:, column["title_coverage"]] = matched
        rows[:, column["coverage"]] = (matched == 1.0) & bool(q_tokens)
        rows[:, column["title_terms"]] = [len(t) for t in titles]
        rows[:, column["phrase"]] = [bool(q_norm) and q_norm in self.title_norm[p] for p in positions.tolist()]
