"""Text analysis shared by indexing and querying: lower-casing, CJK segmentation, stopwords, stemming."""

from __future__ import annotations

import re
from functools import lru_cache

import Stemmer

_TOKEN = re.compile(r"[^\W_]+(?:[.'][^\W_]+)*", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _segment(text: str) -> list[str]:
    if not _CJK.search(text):
        return _TOKEN.findall(text)
    import jieba

    return [t for t in jieba.lcut(text) if _TOKEN.fullmatch(t)]


def analyze(text: str) -> list[str]:
    """Tokens for BM25: stemmed English words, jieba words for Chinese, numbers kept as they are."""
    words = [w for w in _segment(text.lower()) if w not in STOPWORDS]
    return list(_stemmer().stemWords(words))
