"""Vector indexes: exact inner product for small catalogues, FAISS HNSW above a size threshold."""

from __future__ import annotations

import json
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

    def save(self, folder: Path) -> None: ...


class ExactIndex:
    kind = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.size = len(vectors)

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


def build_vector_index(vectors: np.ndarray, exact_max_items: int) -> VectorIndex:
    if len(vectors) <= exact_max_items:
        return ExactIndex(vectors)
    return HnswIndex.build(vectors)


def load_vector_index(folder: Path) -> VectorIndex:
    kind = json.loads((folder / "meta.json").read_text())["kind"]
    if kind == "exact":
        return ExactIndex(np.load(folder / "vectors.npy"))
    index = faiss.read_index(str(folder / "hnsw.faiss"))
    assert isinstance(index, faiss.IndexHNSWFlat)
    return HnswIndex(index)
