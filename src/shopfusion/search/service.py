"""Search over a built workspace: builds its indexes at `build` time, answers queries at serve time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shopfusion.catalog.schema import Item
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.encoders.base import TextEncoder
from shopfusion.index.lexical import Bm25Index, weighted_tokens
from shopfusion.index.vector import build_vector_index, load_vector_index
from shopfusion.results import ResultItem
from shopfusion.search.hybrid import HybridSearcher
from shopfusion.settings import SearchSettings


def build_search_artifacts(items: list[Item], vectors: np.ndarray, settings: SearchSettings, folder: Path) -> str:
    """Write the lexical and vector indexes into `folder`; returns the vector index kind."""
    lexical = Bm25Index.build([weighted_tokens(i, settings.field_weights) for i in items])
    vector_index = build_vector_index(vectors, settings.exact_vector_max_items)
    lexical.save(folder / "lexical")
    vector_index.save(folder / "vectors")
    return type(vector_index).__name__


class SearchService:
    def __init__(self, searcher: HybridSearcher, catalog: CatalogSnapshot) -> None:
        self.searcher = searcher
        self.catalog = catalog

    @classmethod
    def load(
        cls, folder: Path, catalog: CatalogSnapshot, encoder: TextEncoder, settings: SearchSettings
    ) -> SearchService:
        searcher = HybridSearcher(
            Bm25Index.load(folder / "lexical"), load_vector_index(folder / "vectors"), encoder, settings
        )
        return cls(searcher, catalog)

    def search(self, query: str, k: int = 10) -> list[ResultItem]:
        results = []
        for hit in self.searcher.search(query, k):
            matched = [s for s, r in (("keywords", hit.lexical_rank), ("meaning", hit.semantic_rank)) if r]
            signals = {
                "lexical_score": round(hit.lexical_score, 4),
                "semantic_score": round(hit.semantic_score, 4),
                "lexical_rank": hit.lexical_rank,
                "semantic_rank": hit.semantic_rank,
            }
            reason = "matches the query by " + " and ".join(matched)
            results.append(self.catalog.result(hit.position, hit.score, reason, signals))
        return results
