"""The metrics contract, and the vectorised binary nDCG agreeing with it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from shopfusion.metrics import mrr_at_k, ndcg_at_k, ndcg_of_hits, ndcg_rows, recall_at_k


def test_ndcg_by_hand() -> None:
    grades = {"a": 3.0, "b": 1.0, "c": 0.0}
    got = ndcg_at_k(["b", "x", "a"], grades, 3)
    assert got == pytest.approx((1.0 + 3.0 / 2.0) / (3.0 + 1.0 / math.log2(3)))
    # binary target of 4 items, two of them found: the ideal is min(4, k) hits
    assert ndcg_at_k(["a", "x", "b"], {"a": 1, "b": 1}, 3, ideal_hits=4) == pytest.approx(
        (1.0 + 0.5) / (1.0 + 1 / math.log2(3) + 0.5)
    )
    assert ndcg_at_k(["x"], {}, 3) == 0.0


def test_recall_and_mrr_by_hand() -> None:
    grades = {"a": 1.0, "b": 2.0, "c": 1.0, "d": 0.0}
    assert recall_at_k(["d", "b", "x"], grades, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "b"], grades, 2, cap_at_k=True) == 1.0
    assert mrr_at_k(["d", "x", "c"], grades, 3) == pytest.approx(1 / 3)
    assert mrr_at_k(["d"], grades, 3) == 0.0


@pytest.mark.parametrize("k", [1, 5, 10])
def test_vectorised_binary_ndcg_agrees_with_the_contract(k: int) -> None:
    rng = np.random.default_rng(k)
    n_rows, n_items = 300, 40
    targets = sp.csr_matrix((rng.random((n_rows, n_items)) < 0.1).astype(np.float32))
    found = np.asarray(targets.sum(axis=1)).ravel().astype(np.int64)
    sizes = found + rng.integers(0, 3, n_rows)  # some target items outside the catalogue
    ranked = np.stack([rng.permutation(n_items)[:k] for _ in range(n_rows)])
    for row, length in zip(ranked, rng.integers(0, k + 1, n_rows), strict=True):
        row[length:] = -1  # a list that ran short, padded
    expected = [
        ndcg_at_k([str(p) for p in row if p >= 0], {str(p): 1.0 for p in targets[r].indices}, k, ideal_hits=int(n))
        for r, (row, n) in enumerate(zip(ranked, sizes, strict=True))
    ]
    assert ndcg_rows(ranked, targets, sizes, k) == pytest.approx(expected, abs=1e-12)
    hits = np.array([[p >= 0 and targets[r, p] > 0 for p in row] for r, row in enumerate(ranked)], dtype=float)
    assert ndcg_of_hits(hits, sizes, k) == pytest.approx(expected, abs=1e-12)
    assert ndcg_of_hits(np.zeros((2, k)), np.array([0, 3]), k).tolist() == [0.0, 0.0]
