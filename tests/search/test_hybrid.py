"""Fusion on hand-made candidate lists: RRF and normalised blending, with weights that change the order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shopfusion.index.vector import ExactIndex, HnswIndex
from shopfusion.rank.candidates import Candidates
from shopfusion.search.hybrid import HybridSearcher, fuse
from shopfusion.settings import SearchSettings

LEX = Candidates(np.array([0, 1, 2]), np.array([10.0, 5.0, 1.0]))
SEM = Candidates(np.array([2, 0, 3]), np.array([0.9, 0.5, 0.4]))


def order(fused: dict[int, float]) -> list[int]:
    return sorted(fused, key=lambda p: (-fused[p], p))


def test_rrf_hand_computed() -> None:
    fused = fuse(LEX, SEM, SearchSettings(fusion="rrf", lexical_weight=1, semantic_weight=1, rrf_k=60))
    # (rrf_k + 1) / (rrf_k + rank): the first rank of a list counts 1
    assert np.isclose(fused[0], 1 + 61 / 62) and np.isclose(fused[2], 61 / 63 + 1)
    assert order(fused) == [0, 2, 1, 3]


def test_rrf_weights_scale_each_lists_share() -> None:
    fused = fuse(LEX, SEM, SearchSettings(fusion="rrf", lexical_weight=0.8, semantic_weight=0.2, rrf_k=60))
    assert np.isclose(fused[1], 0.8 * 61 / 62) and np.isclose(fused[3], 0.2 * 61 / 63)
    assert order(fused) == [0, 2, 1, 3]


def test_blend_hand_computed_and_weights_matter() -> None:
    equal = fuse(LEX, SEM, SearchSettings(fusion="blend", lexical_weight=0.5, semantic_weight=0.5))
    # lexical min-max: 1, 4/9, 0; semantic min-max: p2 1, p0 0.2, p3 0
    assert np.isclose(equal[0], 0.5 + 0.1) and np.isclose(equal[1], 0.5 * 4 / 9) and np.isclose(equal[2], 0.5)
    assert order(equal) == [0, 2, 1, 3]
    semantic_heavy = fuse(LEX, SEM, SearchSettings(fusion="blend", lexical_weight=0.2, semantic_weight=0.8))
    assert order(semantic_heavy) == [2, 0, 1, 3]


def test_method_overrides_configured_fusion() -> None:
    settings = SearchSettings(fusion="blend")
    assert fuse(LEX, SEM, settings, "rrf") == fuse(LEX, SEM, settings.model_copy(update={"fusion": "rrf"}))


def test_candidates_top_respects_mask_and_ties() -> None:
    scores = np.array([1.0, 3.0, 3.0, -np.inf, 2.0])
    top = Candidates.top(scores, 10)
    assert top.positions.tolist() == [1, 2, 4, 0]  # equal scores by position; -inf dropped
    masked = Candidates.top(scores, 2, np.array([True, False, True, True, True]))
    assert masked.positions.tolist() == [2, 4]
    assert Candidates(np.array([5]), np.array([0.3])).normalised().tolist() == [1.0]


class FixedLexical:
    """A lexical index that matches nothing: isolates the semantic side."""

    size = 2000

    def scores(self, query: str) -> np.ndarray:
        return np.zeros(self.size, dtype=np.float32)

    def save(self, folder: Path) -> None:
        raise NotImplementedError


class FixedEncoder:
    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    @property
    def model_id(self) -> str:
        return "fixed"

    @property
    def dim(self) -> int:
        return len(self.vector)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return np.tile(self.vector, (len(texts), 1))


def test_hnsw_with_a_selective_filter_scans_the_filtered_items_exactly() -> None:
    vectors = np.random.default_rng(0).normal(size=(2000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[0]
    mask = np.zeros(2000, dtype=bool)
    mask[[1500, 1700, 1900]] = True  # three items, far from the query's neighbourhood in general
    settings = SearchSettings(candidates=10, exact_vector_max_items=100)
    hnsw = HybridSearcher(FixedLexical(), HnswIndex.build(vectors), FixedEncoder(query), settings)
    exact = HybridSearcher(FixedLexical(), ExactIndex(vectors), FixedEncoder(query), settings)
    found = hnsw.semantic_candidates("q", mask)
    assert sorted(found.positions.tolist()) == [1500, 1700, 1900]
    assert found.positions.tolist() == exact.semantic_candidates("q", mask).positions.tolist()
    assert np.allclose(found.scores, vectors[found.positions] @ query, atol=1e-5)
    assert hnsw.semantic_candidates("q").positions[0] == 0


def test_with_settings_shares_indexes_and_query_vectors() -> None:
    searcher = HybridSearcher(
        FixedLexical(), ExactIndex(np.eye(4, dtype=np.float32)), FixedEncoder(np.eye(4)[0]), SearchSettings()
    )
    other = searcher.with_settings(SearchSettings(lexical_weight=0.1))
    assert other.settings.lexical_weight == 0.1 and searcher.settings.lexical_weight == 0.8
    assert other.lexical is searcher.lexical and other.vectors is searcher.vectors
    assert other.query_vectors is searcher.query_vectors
