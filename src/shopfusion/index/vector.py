"""Vector indexes: exact inner product for small catalogues, FAISS HNSW above a size threshold."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np


class VectorIndex(Protocol):
    size: int

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the k nearest rows by inner product, best first."""
        ...

    def subset_scores(self, query: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Exact inner products with the rows at `positions` (a filtered subset of the catalogue)."""
        ...

    def all_scores(self, query: np.ndarray) -> np.ndarray | None:
        """Every row's inner product, or None where the index does not scan exhaustively (HNSW)."""
        ...


class ExactIndex:
    kind = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.size = len(vectors)
        self.dim = self.vectors.shape[1]

    def all_scores(self, query: np.ndarray) -> np.ndarray:
        return self.vectors @ query.astype(np.float32)

    def subset_scores(self, query: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return self.vectors[positions] @ query.astype(np.float32)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self.all_scores(query)
        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top, scores[top]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "vectors.npy", self.vectors)
        (folder / "meta.json").write_text(json.dumps({"kind": self.kind}))


class HnswIndex:
    kind = "hnsw"

    def __init__(self, index: faiss.IndexHNSWFlat, ef_search: int = 128) -> None:
        self.index = index
        self.index.hnsw.efSearch = ef_search
        self.size = int(index.ntotal)
        self.dim = int(index.d)

    def all_scores(self, query: np.ndarray) -> None:
        return None

    @classmethod
    def build(cls, vectors: np.ndarray, *, m: int = 32, ef_construction: int = 80) -> HnswIndex:
        index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.size)
        scores, positions = self.index.search(query.reshape(1, -1).astype(np.float32), k)
        keep = positions[0] >= 0
        return positions[0][keep].astype(np.int64), scores[0][keep]

    def subset_scores(self, query: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if len(positions) == 0:
            return np.zeros(0, dtype=np.float32)
        rows = self.index.reconstruct_batch(np.ascontiguousarray(positions, dtype=np.int64))
        return np.asarray(rows @ query.astype(np.float32), dtype=np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / "hnsw.faiss"))
        (folder / "meta.json").write_text(json.dumps({"kind": self.kind}))


BuiltVectorIndex = ExactIndex | HnswIndex


def build_vector_index(vectors: np.ndarray, exact_max_items: int) -> BuiltVectorIndex:
    if len(vectors) <= exact_max_items:
        return ExactIndex(vectors)
    return HnswIndex.build(vectors)


class LiveVectorIndex:
    """A built vector index plus vectors written since (until the next build merges them): a written vector
    replaces the built one at its position, or takes a new position after the built ones. Positions past
    the built ones without a written vector (deleted since) never score. Immutable, like LiveLexicalIndex."""

    def __init__(self, built: BuiltVectorIndex, size: int, written: Mapping[int, np.ndarray]) -> None:
        self.built = built
        self.size = size
        self.positions = np.fromiter(written, dtype=np.int64, count=len(written))
        self.vectors = np.array([written[int(p)] for p in self.positions], dtype=np.float32).reshape(-1, built.dim)
        self._order = np.argsort(self.positions)
        self._sorted = self.positions[self._order]

    def all_scores(self, query: np.ndarray) -> np.ndarray | None:
        built = self.built.all_scores(query)
        if built is None:
            return None
        out = np.full(self.size, -np.inf, dtype=np.float32)
        out[: self.built.size] = built
        out[self.positions] = self.vectors @ query.astype(np.float32)
        return out

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        built, built_scores = self.built.search(query, k + len(self.positions))  # written ones may be among them
        keep = ~np.isin(built, self.positions)
        positions = np.concatenate([built[keep], self.positions])
        scores = np.concatenate([built_scores[keep], self.vectors @ query.astype(np.float32)])
        order = np.argsort(-scores, kind="stable")[:k]
        return positions[order], scores[order]

    def subset_scores(self, query: np.ndarray, positions: np.ndarray) -> np.ndarray:
        out = np.full(len(positions), -np.inf, dtype=np.float32)
        in_built = positions < self.built.size
        out[in_built] = self.built.subset_scores(query, positions[in_built])
        if len(self.positions):
            row = np.searchsorted(self._sorted, positions).clip(max=len(self._sorted) - 1)
            written = self._sorted[row] == positions
            out[written] = self.vectors[self._order[row[written]]] @ query.astype(np.float32)
        return out


def load_vector_index(folder: Path) -> BuiltVectorIndex:
    kind = json.loads((folder / "meta.json").read_text())["kind"]
    if kind == "exact":
        return ExactIndex(np.load(folder / "vectors.npy"))
    index = faiss.read_index(str(folder / "hnsw.faiss"))
    assert isinstance(index, faiss.IndexHNSWFlat)
    return HnswIndex(index)
