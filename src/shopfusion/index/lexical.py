"""BM25 lexical index (bm25s) over weighted item fields, with typo-tolerant, synonym-expanded queries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from shopfusion.catalog.schema import Item
from shopfusion.index.synonyms import Synonyms
from shopfusion.index.text import analyze

MIN_FUZZY_LENGTH = 4  # shorter unknown tokens are too ambiguous to correct
MIN_SPLIT_PART = 3
CORRECTION_CACHE = 65_536


class LexicalIndex(Protocol):
    size: int

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed document, in index order (0 where no term matches)."""
        ...

    def save(self, folder: Path) -> None: ...


def item_fields(item: Item) -> dict[str, str]:
    """The searchable text of an item by field name (the names `field_weights` refers to)."""
    return {
        "title": item.title,
        "brand": item.brand or "",
        "category": " ".join(item.category),
        "attributes": " ".join(f"{k} {v}" for k, v in item.attributes.items()),
        "description": item.description,
    }


def weighted_tokens(item: Item, field_weights: Mapping[str, float]) -> list[str]:
    """An item's tokens with each field repeated by its (rounded) weight: field boosts inside one BM25."""
    tokens: list[str] = []
    for name, text in item_fields(item).items():
        repeat = max(0, round(field_weights.get(name, 1.0)))
        if text and repeat:
            tokens.extend(analyze(text) * repeat)
    return tokens


class Bm25Index:
    def __init__(self, model: bm25s.BM25, size: int, synonyms: Synonyms | None = None) -> None:
        self._model = model
        self.size = size
        self.synonyms = synonyms or Synonyms([])
        # Fuzzy matching against the vocabulary is the slow part of a query; the same misspellings recur.
        self._correct = lru_cache(maxsize=CORRECTION_CACHE)(self._correct_uncached)

    @classmethod
    def build(cls, documents: Sequence[list[str]], *, k1: float = 1.2, b: float = 0.75) -> Bm25Index:
        model = bm25s.BM25(k1=k1, b=b)
        model.index([list(d) for d in documents], show_progress=False)
        return cls(model, len(documents))

    @cached_property
    def doc_freq(self) -> dict[str, int]:
        """Documents containing each vocabulary token (from the CSC score matrix), '' excluded."""
        counts = np.diff(self._model.scores["indptr"])
        return {t: int(counts[i]) for t, i in self._model.vocab_dict.items() if t}

    @cached_property
    def _vocab_list(self) -> list[str]:
        return [t for t in self.doc_freq if len(t) >= MIN_FUZZY_LENGTH - 1 and not t[0].isdigit()]

    def _correct_uncached(self, token: str) -> tuple[str, ...]:
        """An unknown token as two known words ('doorknob' → door knob) or its closest known spelling."""
        df = self.doc_freq
        if token in df or token[0].isdigit() or len(token) < MIN_FUZZY_LENGTH:
            return (token,)
        splits = [
            (min(df[token[:i]], df[token[i:]]), (token[:i], token[i:]))
            for i in range(MIN_SPLIT_PART, len(token) - MIN_SPLIT_PART + 1)
            if token[:i] in df and token[i:] in df
        ]
        if splits:
            return max(splits)[1]
        max_edits = 1 if len(token) <= 7 else 2
        matches = process.extract(
            token, self._vocab_list, scorer=Levenshtein.distance, score_cutoff=max_edits, limit=10
        )
        if not matches:
            return (token,)
        best = min(m[1] for m in matches)
        return (max((m[0] for m in matches if m[1] == best), key=lambda t: df[t]),)

    def query_tokens(self, query: str) -> list[str]:
        """Analysed query tokens, typos corrected against the vocabulary, synonyms added; unknown ones dropped."""
        tokens = [c for t in analyze(query) for c in self._correct(t)]
        return [t for t in self.synonyms.expand(tokens) if t in self.doc_freq]

    def scores_for_tokens(self, tokens: list[str]) -> np.ndarray:
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def scores(self, query: str) -> np.ndarray:
        return self.scores_for_tokens(self.query_tokens(query))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(str(folder), show_progress=False)
        (folder / "size.json").write_text(json.dumps({"size": self.size}))

    @classmethod
    def load(cls, folder: Path, synonyms: Synonyms | None = None) -> Bm25Index:
        model = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(model, json.loads((folder / "size.json").read_text())["size"], synonyms)
