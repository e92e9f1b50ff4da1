"""A version's search indexes: written at `build`, loaded when it is served. Their file names are named here once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shopfusion.catalog.schema import Item
from shopfusion.index.lexical import Bm25Index, weighted_tokens
from shopfusion.index.synonyms import Synonyms
from shopfusion.index.vector import BuiltVectorIndex, build_vector_index, load_vector_index
from shopfusion.settings import SearchSettings

LEXICAL_DIR, VECTORS_DIR, POPULARITY_FILE = "lexical", "vectors", "popularity.npy"


def build_search_artifacts(
    items: list[Item], vectors: np.ndarray, settings: SearchSettings, folder: Path, events: pd.DataFrame | None = None
) -> str:
    """Write the lexical and vector indexes and item popularity (event counts) into `folder`; returns the vector
    index kind."""
    lexical = Bm25Index.build([weighted_tokens(i, settings.field_weights) for i in items])
    vector_index = build_vector_index(vectors, settings.exact_vector_max_items)
    lexical.save(folder / LEXICAL_DIR)
    vector_index.save(folder / VECTORS_DIR)
    counts = events["item_id"].value_counts() if events is not None and len(events) else pd.Series(dtype=float)
    popularity = counts.reindex([i.item_id for i in items]).fillna(0).to_numpy(dtype=np.float32)
    np.save(folder / POPULARITY_FILE, popularity)
    return type(vector_index).__name__


@dataclass(frozen=True)
class BuiltIndexes:
    """What `build_search_artifacts` wrote: the lexical and vector indexes and each item's popularity."""

    lexical: Bm25Index
    vectors: BuiltVectorIndex
    popularity: np.ndarray

    @classmethod
    def load(cls, folder: Path, settings: SearchSettings, root: Path, items: int) -> BuiltIndexes:
        """`root` resolves a relative synonyms path (the workspace folder); `items`: the catalogue's size, for
        builds without popularity."""
        synonyms = Synonyms.load(root / settings.synonyms_path if settings.synonyms_path else None)
        popularity_file = folder / POPULARITY_FILE
        popularity = np.load(popularity_file) if popularity_file.exists() else np.zeros(items, np.float32)
        return cls(Bm25Index.load(folder / LEXICAL_DIR, synonyms), load_vector_index(folder / VECTORS_DIR), popularity)
