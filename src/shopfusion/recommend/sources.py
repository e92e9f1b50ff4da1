"""Candidate sources: small estimators with fit(interactions) and candidates(history, k)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from shopfusion.recommend.interactions import Interactions


@dataclass(frozen=True)
class History:
    """What is known about the person asking: item positions with interest weights and recency (0..1]."""

    items: np.ndarray
    weights: np.ndarray
    recency: np.ndarray

    @classmethod
    def empty(cls) -> History:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32))

    @classmethod
    def of_user(cls, data: Interactions, user: int) -> History:
        row, rec = data.matrix.getrow(user), data.recency.getrow(user)
        return cls(row.indices.astype(np.int64), row.data.astype(np.float32), _aligned(rec, row.indices))

    @classmethod
    def of_items(cls, positions: list[int]) -> History:
        """A session: later items are more recent."""
        n = len(positions)
        return cls(
            np.asarray(positions, dtype=np.int64),
            np.ones(n, dtype=np.float32),
            np.asarray([(i + 1) / n for i in range(n)], dtype=np.float32),
        )


def _aligned(row: sp.csr_matrix, indices: np.ndarray) -> np.ndarray:
    lookup = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
    return np.asarray([lookup.get(int(i), 0.0) for i in indices], dtype=np.float32)


@dataclass(frozen=True)
class Candidates:
    positions: np.ndarray
    scores: np.ndarray
    because: np.ndarray  # per candidate: the history item that contributed most, or -1


class CandidateSource(Protocol):
    name: str

    def fit(self, data: Interactions) -> Self: ...

    def candidates(self, history: History, k: int) -> Candidates: ...


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    nonzero = np.flatnonzero(scores > 0)
    if len(nonzero) <= k:
        return nonzero[np.argsort(-scores[nonzero], kind="stable")]
    top = nonzero[np.argpartition(-scores[nonzero], k - 1)[:k]]
    return top[np.argsort(-scores[top], kind="stable")]


class Popularity:
    """Time-decayed interaction mass per item: trending when the half-life is short."""

    name = "popularity"

    def __init__(self, half_life_days: float = 30.0) -> None:
        self.half_life_days = half_life_days
        self.scores_ = np.zeros(0, dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        # recency r = 1/(1+age) → age = 1/r - 1; decay = 0.5 ** (age / half_life)
        rec = data.recency.tocoo()
        weights = data.matrix.tocoo()
        age = 1.0 / np.maximum(rec.data, 1e-9) - 1.0
        decayed = sp.csr_matrix(
            (weights.data * 0.5 ** (age / self.half_life_days), (rec.row, rec.col)), shape=rec.shape
        )
        self.scores_ = np.asarray(decayed.sum(axis=0)).ravel().astype(np.float32)
        return self

    def candidates(self, history: History, k: int) -> Candidates:
        top = _top_k(self.scores_, k)
        return Candidates(top, self.scores_[top], np.full(len(top), -1))


class RepeatPurchase:
    """The person's own items, by frequency and recency: on retail data people re-buy what they bought."""

    name = "repeat"

    def fit(self, data: Interactions) -> Self:
        return self

    def candidates(self, history: History, k: int) -> Candidates:
        scores = np.log1p(history.weights) * (0.25 + history.recency)
        order = np.argsort(-scores, kind="stable")[:k]
        return Candidates(history.items[order], scores[order].astype(np.float32), history.items[order])


class ItemKNN:
    """Item-to-item cosine similarity over co-interacting users, top neighbours kept per item."""

    name = "item_knn"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours
        self.similarity_ = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        binary = (data.matrix > 0).astype(np.float32)
        item_vectors = normalize(binary.T.tocsr(), norm="l2", axis=1)
        sim = (item_vectors @ item_vectors.T).tocsr()
        sim.setdiag(0)
        sim.eliminate_zeros()
        self.similarity_ = _keep_top_per_row(sim, self.neighbours)
        return self

    def similar(self, position: int, k: int) -> Candidates:
        row = self.similarity_.getrow(position)
        order = np.argsort(-row.data, kind="stable")[:k]
        return Candidates(row.indices[order], row.data[order], np.full(len(order), position))

    def candidates(self, history: History, k: int) -> Candidates:
        if len(history.items) == 0:
            return Candidates(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
        weights = np.log1p(history.weights) * (0.25 + history.recency)
        contrib = self.similarity_[history.items].multiply(weights[:, None]).tocsc()
        scores = np.asarray(contrib.sum(axis=0)).ravel()
        top = _top_k(scores, k)
        strongest = np.asarray(contrib[:, top].argmax(axis=0)).ravel() if len(top) else np.zeros(0, dtype=np.int64)
        return Candidates(top, scores[top].astype(np.float32), history.items[strongest])


def _keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        if start == end:
            continue
        data, idx = matrix.data[start:end], matrix.indices[start:end]
        keep = np.argsort(-data, kind="stable")[:k]
        rows.append(np.full(len(keep), r))
        cols.append(idx[keep])
        vals.append(data[keep])
    if not rows:
        return sp.csr_matrix(matrix.shape, dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=matrix.shape,
        dtype=np.float32,
    )
