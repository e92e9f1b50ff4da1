"""Items written or deleted since the build, searchable at once: live indexes over the built ones until the next
build merges them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from shopfusion.index.lexical import Bm25Index, LiveLexicalIndex
from shopfusion.index.vector import BuiltVectorIndex, LiveVectorIndex
from shopfusion.search.hybrid import HybridSearcher


@dataclass(frozen=True)
class ItemWrites:
    """The built indexes, the tokens and vector of each catalogue position written since, and the deleted
    positions."""

    lexical: Bm25Index
    vectors: BuiltVectorIndex
    documents: Mapping[int, list[str]] = field(default_factory=dict)
    embeddings: Mapping[int, np.ndarray] = field(default_factory=dict)
    deleted: frozenset[int] = frozenset()

    @property
    def changed(self) -> bool:
        """Whether an item was written since the build (deletions only mask results)."""
        return bool(self.documents or self.embeddings)

    def written(self, position: int, tokens: list[str], vector: np.ndarray) -> ItemWrites:
        """With the item at `position` (new, or replacing the built one) as written."""
        return replace(
            self,
            documents={**self.documents, position: tokens},
            embeddings={**self.embeddings, position: vector},
            deleted=self.deleted - {position},
        )

    def without(self, position: int) -> ItemWrites:
        """With the item at `position` deleted."""
        return replace(
            self,
            documents={p: d for p, d in self.documents.items() if p != position},
            embeddings={p: v for p, v in self.embeddings.items() if p != position},
            deleted=self.deleted | {position},
        )

    def searcher(self, built: HybridSearcher, size: int) -> HybridSearcher:
        """`built` over the live indexes of a catalogue of `size` items."""
        lexical = LiveLexicalIndex(self.lexical, size, self.documents)
        vectors = LiveVectorIndex(self.vectors, size, self.embeddings)
        return built.with_indexes(lexical, vectors)

    def live(self, mask: np.ndarray | None, size: int) -> np.ndarray | None:
        """`mask` without the deleted items."""
        if not self.deleted:
            return mask
        live = np.ones(size, dtype=bool) if mask is None else mask.copy()
        live[list(self.deleted)] = False
        return live
