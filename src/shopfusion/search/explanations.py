"""Why a search result is where it is: the learned ranking's strongest feature contributions, or each
retriever's score and rank in the fused ranking."""

from __future__ import annotations

from typing import Any

from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.results import ResultItem
from shopfusion.search.hybrid import Hit
from shopfusion.search.learned import LearnedHit

TOP_CONTRIBUTIONS = 5  # learned features shown per result, largest first


def explained_result(catalog: CatalogSnapshot, hit: Hit, learned: LearnedHit | None = None) -> ResultItem:
    """The result for `hit`, with a reason and its signals (`learned`: the same hit in the learned ranking)."""
    if learned is not None:
        top = sorted(learned.contributions.items(), key=lambda kv: -abs(kv[1]))[:TOP_CONTRIBUTIONS]
        signals: dict[str, Any] = {name: round(value, 4) for name, value in top}
        return catalog.result(hit.position, hit.score, learned.reason(), {"ranker": "learned", **signals})
    matched = [s for s, r in (("keywords", hit.lexical_rank), ("meaning", hit.semantic_rank)) if r]
    signals = {
        "ranker": "fusion",
        "lexical_score": round(hit.lexical_score, 4),
        "semantic_score": round(hit.semantic_score, 4),
        "lexical_rank": hit.lexical_rank,
        "semantic_rank": hit.semantic_rank,
        "fused_rank": hit.fused_rank,
    }
    reason = "matches the query by " + " and ".join(matched)
    return catalog.result(hit.position, hit.score, reason, signals)
