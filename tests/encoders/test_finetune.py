"""Batches for contrastive training never hold a query or positive twice (it would be its own negative)."""

from __future__ import annotations

import random

from shopfusion.encoders.finetune import Triple, batches_without_duplicates


def test_batches_have_no_repeated_query_or_positive_and_keep_every_triple() -> None:
    triples = [Triple(f"q{i % 5}", f"p{i % 7}", f"n{i}") for i in range(60)]
    batches = batches_without_duplicates(triples, 4, random.Random(0))
    assert sorted((t.query, t.positive, t.negative) for b in batches for t in b) == sorted(
        (t.query, t.positive, t.negative) for t in triples
    )
    for batch in batches:
        assert 1 <= len(batch) <= 4
        assert len({t.query for t in batch}) == len(batch)
        assert len({t.positive for t in batch}) == len(batch)
