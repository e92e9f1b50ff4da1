"""Vector indexes: exact scan and FAISS HNSW agree; the size threshold picks one; both persist."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shopfusion.index.vector import ExactIndex, HnswIndex, build_vector_index, load_vector_index


def unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_returns_true_nearest() -> None:
    vectors = unit_vectors(200)
    positions, scores = ExactIndex(vectors).search(vectors[17], 5)
    assert positions[0] == 17 and np.isclose(scores[0], 1.0)
    assert np.all(np.diff(scores) <= 0)


def test_hnsw_agrees_with_exact() -> None:
    vectors, queries = unit_vectors(2000), unit_vectors(20, seed=1)
    exact, hnsw = ExactIndex(vectors), HnswIndex.build(vectors)
    overlap = [len(set(exact.search(q, 10)[0]) & set(hnsw.search(q, 10)[0])) / 10 for q in queries]
    assert np.mean(overlap) >= 0.95


def test_threshold_picks_the_index() -> None:
    vectors = unit_vectors(100)
    assert isinstance(build_vector_index(vectors, exact_max_items=100), ExactIndex)
    assert isinstance(build_vector_index(vectors, exact_max_items=99), HnswIndex)


def test_both_kinds_save_and_load(tmp_path: Path) -> None:
    vectors = unit_vectors(300)
    for limit, kind in ((1000, ExactIndex), (10, HnswIndex)):
        folder = tmp_path / kind.__name__
        build_vector_index(vectors, limit).save(folder)
        loaded = load_vector_index(folder)
        assert isinstance(loaded, kind)
        assert loaded.search(vectors[3], 1)[0][0] == 3
