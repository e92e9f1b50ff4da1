"""Candidate sources: small estimators with fit(interactions) and scores(history) over the whole catalogue.

Every source scores all items densely (catalogues here are ≤ ~100k items, so one request is a few vector
operations) and can name the history item behind a candidate, which is what explanations quote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from shopfusion.rank.candidates import Candidates
from shopfusion.recommend.interactions import Interactions

_NO_ITEMS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class History:
    """What is known about the person asking: item positions with interest weights and recency (0..1],
    and their row in the training matrix (-1 for sessions and unknown users)."""

    items: np.ndarray
    weights: np.ndarray
    recency: np.ndarray
    user: int = -1

    @classmethod
    def empty(cls) -> History:
        return cls(_NO_ITEMS, np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32))

    @classmethod
    def of_user(cls, data: Interactions, user: int) -> History:
        """Recency is relative to the user's own latest interaction: their last item always counts fully."""
        row, rec = data.matrix.getrow(user), data.recency.getrow(user)
        recency = _aligned(rec, row.indices)
        if len(recency):
            age = 1.0 / np.maximum(recency, 1e-9) - 1.0
            recency = (1.0 / (1.0 + age - age.min())).astype(np.float32)
        return cls(row.indices.astype(np.int64), row.data.astype(np.float32), recency, user)

    @classmethod
    def of_items(cls, positions: list[int]) -> History:
        """A session: later items are more recent (the last one counts fully)."""
        n = len(positions)
        return cls(
            np.asarray(positions, dtype=np.int64),
            np.ones(n, dtype=np.float32),
            np.asarray([1.0 / (n - i) for i in range(n)], dtype=np.float32),
        )

    def strength(self) -> np.ndarray:
        """How much each history item should pull: more interactions and more recent pull harder."""
        return (np.log1p(self.weights) * (0.25 + self.recency)).astype(np.float32)


def _aligned(row: sp.csr_matrix, indices: np.ndarray) -> np.ndarray:
    lookup = dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))
    return np.asarray([lookup.get(int(i), 0.0) for i in indices], dtype=np.float32)


class CandidateSource(Protocol):
    name: str

    def fit(self, data: Interactions) -> Self: ...

    def scores(self, history: History) -> np.ndarray:
        """One score per catalogue item; ≤ 0 means 'not a candidate'."""
        ...

    def because(self, history: History, positions: np.ndarray) -> np.ndarray:
        """For each candidate position, the history item behind it, or -1."""
        ...


@runtime_checkable
class BatchScorer(Protocol):
    """A source that scores many histories faster together than one by one (e.g. a neural network)."""

    def scores_many(self, histories: Sequence[History]) -> np.ndarray: ...


def score_matrix(source: CandidateSource, histories: Sequence[History]) -> np.ndarray:
    """One row of catalogue scores per history (a copy: callers may write into it)."""
    if isinstance(source, BatchScorer):
        return source.scores_many(histories)
    return np.vstack([source.scores(h) for h in histories]).astype(np.float32)


def top_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best positive scores, best first (ties keep catalogue order)."""
    nonzero = np.flatnonzero(scores > 0)
    if len(nonzero) > k:
        nonzero = nonzero[np.argpartition(-scores[nonzero], k - 1)[:k]]
    return nonzero[np.lexsort((nonzero, -scores[nonzero]))]


def candidates(source: CandidateSource, history: History, k: int, exclude: np.ndarray | None = None) -> Candidates:
    """The source's top k for this history, never one of `exclude` (positions)."""
    scores = source.scores(history)
    if exclude is not None and len(exclude):
        scores = scores.copy()
        scores[exclude] = 0.0
    top = top_positions(scores, k)
    return Candidates(top, scores[top].astype(np.float32), source.because(history, top))


def candidates_many(
    source: CandidateSource, histories: Sequence[History], k: int, exclusions: Sequence[np.ndarray], batch: int = 1024
) -> list[Candidates]:
    """`candidates` for many histories, scored in batches; the history item behind each is not looked up
    (-1): bulk ranking for evaluation and tuning needs no explanations."""
    out = []
    for start in range(0, len(histories), batch):
        scores = score_matrix(source, histories[start : start + batch])
        for row, excluded in zip(scores, exclusions[start : start + batch], strict=True):
            row[excluded] = 0.0
            top = top_positions(row, k)
            out.append(Candidates(top, row[top], np.full(len(top), -1, dtype=np.int64)))
    return out


def _none_behind(history: History, positions: np.ndarray) -> np.ndarray:
    return np.full(len(positions), -1, dtype=np.int64)


class Popularity:
    """Time-decayed interaction mass per item: 'trending' is the same with a short half-life."""

    def __init__(self, half_life_days: float = 30.0, name: str = "popularity") -> None:
        self.half_life_days = half_life_days
        self.name = name
        self.scores_ = np.zeros(0, dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        # recency r = 1/(1+age) → age = 1/r - 1; decay = 0.5 ** (age / half_life)
        rec = data.recency.tocoo()
        weights = data.matrix.tocoo()
        age = 1.0 / np.maximum(rec.data, 1e-9) - 1.0
        decayed = sp.csr_matrix(
            (weights.data * 0.5 ** (age / self.half_life_days), (rec.row, rec.col)), shape=rec.shape
        )
        # a floor keeps every item with any interaction rankable however old it is
        self.scores_ = (np.asarray(decayed.sum(axis=0)).ravel() + 1e-6 * (data.matrix.getnnz(axis=0) > 0)).astype(
            np.float32
        )
        return self

    def scores(self, history: History) -> np.ndarray:
        return self.scores_

    because = staticmethod(_none_behind)


class RepeatPurchase:
    """The person's own items, by frequency and recency: on retail data people re-buy what they bought."""

    name = "repeat"

    def __init__(self) -> None:
        self.n_items = 0

    def fit(self, data: Interactions) -> Self:
        self.n_items = data.n_items
        return self

    def scores(self, history: History) -> np.ndarray:
        out = np.zeros(self.n_items, dtype=np.float32)
        np.add.at(out, history.items, history.strength())
        return out

    def because(self, history: History, positions: np.ndarray) -> np.ndarray:
        return positions.astype(np.int64)


class _ItemToItem:
    """Sources that score an item by its similarity to each history item, weighted by history strength."""

    def _rows(self, items: np.ndarray) -> np.ndarray:
        """Similarity of each given item (rows) to every catalogue item (columns), dense."""
        raise NotImplementedError

    def _n_items(self) -> int:
        raise NotImplementedError

    def scores(self, history: History) -> np.ndarray:
        if len(history.items) == 0:
            return np.zeros(self._n_items(), dtype=np.float32)
        out = history.strength() @ self._rows(history.items)
        out[history.items] = np.minimum(out[history.items], 0.0)  # an item is not similar to itself
        return out.astype(np.float32)

    def because(self, history: History, positions: np.ndarray) -> np.ndarray:
        if len(history.items) == 0 or len(positions) == 0:
            return np.full(len(positions), -1, dtype=np.int64)
        pull = self._rows(history.items)[:, positions] * history.strength()[:, None]
        return history.items[pull.argmax(axis=0)].astype(np.int64)

    def similar(self, position: int, k: int) -> Candidates:
        """Items most similar to one item (the 'similar items' surface)."""
        one = History.of_items([position])
        return candidates(self, one, k)  # type: ignore[arg-type]


class ItemKNN(_ItemToItem):
    """Item-to-item cosine similarity over co-interacting users, top neighbours kept per item."""

    name = "item_knn"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours
        self.similarity_ = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        self.similarity_ = cosine_neighbours((data.matrix > 0).astype(np.float32), self.neighbours)
        return self

    def _n_items(self) -> int:
        return int(self.similarity_.shape[1])

    def _rows(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.similarity_[items].toarray())


class Complements(ItemKNN):
    """'Frequently bought together': cosine over orders (items in the same order_id), not over users."""

    name = "complements"

    def fit(self, data: Interactions) -> Self:
        self.similarity_ = cosine_neighbours(data.baskets, self.neighbours)
        return self


def cosine_neighbours(rows_by_items: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """Item × item cosine of the columns of a (rows × items) 0/1 matrix, `neighbours` best kept per item."""
    n_items = rows_by_items.shape[1]
    if rows_by_items.shape[0] == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    item_vectors = normalize(sp.csr_matrix(rows_by_items.T, dtype=np.float32), norm="l2", axis=1)
    sim = (item_vectors @ item_vectors.T).tocsr()
    sim.setdiag(0)
    sim.eliminate_zeros()
    return _keep_top_per_row(sim, neighbours)


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


class EASE(_ItemToItem):
    """Steck's EASE: closed-form item×item ridge regression, B = I − P / diag(P), P = (XᵀX + λI)⁻¹.

    Dense in items, so it is skipped (`fitted` stays False) above `max_items`.
    """

    name = "ease"

    def __init__(self, l2: float = 500.0, max_items: int = 20_000, threads: int = 2) -> None:
        self.l2 = l2
        self.max_items = max_items
        self.threads = threads
        self.weights_ = np.zeros((0, 0), dtype=np.float32)
        self.fitted = False

    def fit(self, data: Interactions) -> Self:
        if data.n_items > self.max_items:
            return self
        binary = (data.matrix > 0).astype(np.float64)
        gram = np.asarray((binary.T @ binary).todense())
        gram[np.diag_indices_from(gram)] += self.l2
        with threadpool_limits(self.threads):
            precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights_ = weights.astype(np.float32)
        self.fitted = True
        return self

    def _n_items(self) -> int:
        return int(self.weights_.shape[1])

    def _rows(self, items: np.ndarray) -> np.ndarray:
        return self.weights_[items]


class ContentSimilarity(ItemKNN):
    """Nearest neighbours by item text embedding (exact inner product, FAISS): needs no events, so items
    nobody has bought yet are reachable from day one. Built from the vectors, not from interactions."""

    name = "content"

    def __init__(self, neighbours: int = 100, threads: int = 2) -> None:
        super().__init__(neighbours)
        self.threads = threads

    def from_vectors(self, vectors: np.ndarray) -> Self:
        import faiss

        n = len(vectors)
        k = min(self.neighbours + 1, n)
        if n == 0 or k == 0:
            self.similarity_ = sp.csr_matrix((n, n), dtype=np.float32)
            return self
        faiss.omp_set_num_threads(self.threads)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        sims, neighbours = index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        rows = np.repeat(np.arange(n), k)
        cols, vals = neighbours.ravel(), sims.ravel()
        keep = (cols >= 0) & (cols != rows) & (vals > 0)
        self.similarity_ = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n), dtype=np.float32)
        return self

    def fit(self, data: Interactions) -> Self:
        return self


class MatrixFactorization:
    """implicit's ALS or BPR on the interaction matrix (CPU, threads capped); sessions and users unseen at
    fit time are folded in (ALS: one least-squares step; BPR: mean of their items' factors)."""

    def __init__(
        self,
        kind: Literal["als", "bpr"] = "als",
        factors: int = 64,
        iterations: int = 15,
        threads: int = 2,
        seed: int = 0,
    ) -> None:
        self.name: str = kind
        self.kind = kind
        self.factors = factors
        self.iterations = iterations
        self.threads = threads
        self.seed = seed
        self.model_: Any = None
        self.user_items_ = sp.csr_matrix((0, 0), dtype=np.float32)
        self.gram_: np.ndarray | None = None  # YᵀY + λI for folding in sessions, computed on first use

    def fit(self, data: Interactions) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model: Any
        self.user_items_ = data.matrix.tocsr().astype(np.float32)
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; BLAS threads would oversubscribe
            if self.kind == "als":
                model = AlternatingLeastSquares(
                    factors=self.factors, iterations=self.iterations, num_threads=self.threads, random_state=self.seed
                )
            else:
                model = BayesianPersonalizedRanking(
                    factors=self.factors,
                    iterations=self.iterations * 7,
                    num_threads=self.threads,
                    random_state=self.seed,
                )
            model.fit(self.user_items_, show_progress=False)
        self.model_, self.gram_ = model, None
        return self

    def _user_vector(self, history: History) -> np.ndarray | None:
        if history.user >= 0:
            return np.asarray(self.model_.user_factors[history.user])
        if len(history.items) == 0:
            return None
        row = sp.csr_matrix(
            (history.weights, (np.zeros(len(history.items), dtype=np.int64), history.items)),
            shape=(1, self.user_items_.shape[1]),
        )
        if self.kind == "als":
            return self._fold_in(row)
        return np.asarray(self.model_.item_factors[history.items].mean(axis=0))

    def _fold_in(self, row: sp.csr_matrix) -> np.ndarray:
        """ALS's own least-squares step for one new user (what implicit's recalculate_user solves), with YᵀY
        kept from fit: x = (YᵀY + λI + Σ (c−1) y yᵀ)⁻¹ Σ c y, c = α × interaction weight."""
        items = np.asarray(self.model_.item_factors, dtype=np.float64)
        if self.gram_ is None:
            self.gram_ = items.T @ items + self.model_.regularization * np.eye(items.shape[1])
        factors = items[row.indices]
        confidence = self.model_.alpha * row.data.astype(np.float64)
        a = self.gram_ + (factors.T * (confidence - 1)) @ factors
        return np.linalg.solve(a, factors.T @ confidence).astype(np.float32)

    def scores(self, history: History) -> np.ndarray:
        items = np.asarray(self.model_.item_factors)
        user = self._user_vector(history)
        if user is None:
            return np.zeros(len(items), dtype=np.float32)
        out = (items @ user).astype(np.float32)
        if len(out) == 0 or np.ptp(out) < 1e-9:  # e.g. only items without events: the factors know nothing
            return np.zeros(len(items), dtype=np.float32)
        return out - out.min() + 1e-6  # ranks kept; every item stays a candidate

    def because(self, history: History, positions: np.ndarray) -> np.ndarray:
        if len(history.items) == 0 or len(positions) == 0:
            return np.full(len(positions), -1, dtype=np.int64)
        items = np.asarray(self.model_.item_factors)
        affinity = items[history.items] @ items[positions].T
        return history.items[affinity.argmax(axis=0)].astype(np.int64)
