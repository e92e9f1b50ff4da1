"""BM25 lexical index (bm25s) over weighted item fields, with typo-tolerant, synonym-expanded queries."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Container, Mapping, Sequence
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
    def __init__(
        self, model: bm25s.BM25, size: int, synonyms: Synonyms | None = None, avg_length: float | None = None
    ) -> None:
        """`avg_length`: mean document length in tokens, which scores documents added after the build
        (indexes built before it was recorded normalise such a document by its own length)."""
        self._model = model
        self.size = size
        self.synonyms = synonyms or Synonyms([])
        self.avg_length = avg_length
        # Fuzzy matching against the vocabulary is the slow part of a query; the same misspellings recur.
        self._correct = lru_cache(maxsize=CORRECTION_CACHE)(self._correct_uncached)

    @classmethod
    def build(cls, documents: Sequence[list[str]], *, k1: float = 1.2, b: float = 0.75) -> Bm25Index:
        model = bm25s.BM25(k1=k1, b=b)
        model.index([list(d) for d in documents], show_progress=False)
        avg_length = sum(len(d) for d in documents) / len(documents) if documents else None
        return cls(model, len(documents), avg_length=avg_length)

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

    def query_tokens(self, query: str, extra_vocabulary: Container[str] = frozenset()) -> list[str]:
        """Analysed query tokens, typos corrected against the vocabulary, synonyms added; unknown ones dropped.
        Tokens in `extra_vocabulary` (of documents added since the build) are known as they are."""
        tokens = [c for t in analyze(query) for c in ((t,) if t in extra_vocabulary else self._correct(t))]
        return [t for t in self.synonyms.expand(tokens) if t in self.doc_freq or t in extra_vocabulary]

    def scores_for_tokens(self, tokens: list[str]) -> np.ndarray:
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def scores(self, query: str) -> np.ndarray:
        return self.scores_for_tokens(self.query_tokens(query))

    def score_documents(
        self, tokens: Sequence[str], documents: Sequence[Counter[str]], new_doc_freq: Mapping[str, int]
    ) -> np.ndarray:
        """BM25 (the index's Lucene variant, k1 and b) of documents outside the index, given as term counts,
        with the index's statistics so that their scores compare with its own: a term's idf is the index's
        (terms it lacks count their documents among these, `new_doc_freq`), lengths normalise by its average."""
        k1, b = self._model.k1, self._model.b
        out = np.zeros(len(documents), dtype=np.float32)
        for token in tokens:
            df, n_docs = self.doc_freq.get(token, 0), self.size
            if not df:
                df, n_docs = new_doc_freq.get(token, 0), self.size + len(documents)
            if not df:
                continue
            idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
            for row, counts in enumerate(documents):
                tf = counts.get(token, 0)
                if tf:
                    length = counts.total()
                    norm = 1 - b + b * length / (self.avg_length or length)
                    out[row] += idf * tf / (tf + k1 * norm)
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(str(folder), show_progress=False)
        (folder / "size.json").write_text(json.dumps({"size": self.size, "avg_length": self.avg_length}))

    @classmethod
    def load(cls, folder: Path, synonyms: Synonyms | None = None) -> Bm25Index:
        model = bm25s.BM25.load(str(folder), show_progress=False)
        meta = json.loads((folder / "size.json").read_text())
        return cls(model, meta["size"], synonyms, meta.get("avg_length"))


class LiveLexicalIndex:
    """A built BM25 index plus documents written since (until the next build merges them): a written
    document replaces the built one at its position, or takes a new position after the built ones.
    Immutable: a write makes a new one, so a query never sees half of a change."""

    def __init__(self, built: Bm25Index, size: int, documents: Mapping[int, Sequence[str]]) -> None:
        self.built = built
        self.size = size
        self.positions = np.fromiter(documents, dtype=np.int64, count=len(documents))
        self._counts = [Counter(documents[int(p)]) for p in self.positions]
        self._doc_freq = Counter(t for counts in self._counts for t in counts)

    def scores(self, query: str) -> np.ndarray:
        tokens = self.built.query_tokens(query, self._doc_freq)
        out = np.zeros(self.size, dtype=np.float32)
        out[: self.built.size] = self.built.scores_for_tokens([t for t in tokens if t in self.built.doc_freq])
        out[self.positions] = self.built.score_documents(tokens, self._counts, self._doc_freq)
        return out
