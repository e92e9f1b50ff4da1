"""BM25 lexical index (bm25s) over weighted item fields."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np

from shopfusion.catalog.schema import Item
from shopfusion.index.text import analyze


class LexicalIndex(Protocol):
    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed document, in index order (0 where no term matches)."""
        ...

    def save(self, folder: Path) -> None: ...


def weighted_tokens(item: Item, field_weights: Mapping[str, float]) -> list[str]:
    """An item's tokens with each field repeated by its (rounded) weight: field boosts inside one BM25."""
    fields = {
        "title": item.title,
        "brand": item.brand or "",
        "category": " ".join(item.category),
        "attributes": " ".join(f"{k} {v}" for k, v in item.attributes.items()),
        "description": item.description,
    }
    tokens: list[str] = []
    for name, text in fields.items():
        repeat = max(0, round(field_weights.get(name, 1.0)))
        if text and repeat:
            tokens.extend(analyze(text) * repeat)
    return tokens


class Bm25Index:
    def __init__(self, model: bm25s.BM25, size: int) -> None:
        self._model = model
        self.size = size

    @classmethod
    def build(cls, documents: Sequence[list[str]], *, k1: float = 1.2, b: float = 0.75) -> Bm25Index:
        model = bm25s.BM25(k1=k1, b=b)
        model.index([list(d) for d in documents], show_progress=False)
        return cls(model, len(documents))

    def scores(self, query: str) -> np.ndarray:
        vocab = self._model.vocab_dict
        tokens = [t for t in analyze(query) if t in vocab]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(str(folder), show_progress=False)
        (folder / "size.json").write_text(json.dumps({"size": self.size}))

    @classmethod
    def load(cls, folder: Path) -> Bm25Index:
        model = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(model, json.loads((folder / "size.json").read_text())["size"])
