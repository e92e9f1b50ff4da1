"""Fusion shares, weights and per-source contributions, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from shopfusion.rank.candidates import Candidates
from shopfusion.rank.fusion import fuse, shares


def _cands(positions: list[int], scores: list[float], because: list[int] | None = None) -> Candidates:
    return Candidates(
        np.array(positions), np.array(scores, dtype=np.float32), np.array(because or [-1] * len(positions))
    )


def test_weighted_fusion_sums_weighted_shares() -> None:
    fused = fuse(
        {"a": _cands([1, 2], [4.0, 2.0], [7, 8]), "b": _cands([2, 3], [10.0, 5.0])},
        {"a": 1.0, "b": 0.5},
        10,
    )
    by_pos = {f.position: f for f in fused}
    # item 2: 1.0 × 2/4 + 0.5 × 10/10 = 1.0; item 1: 1.0; item 3: 0.5 × 0.5 = 0.25
    assert by_pos[2].score == pytest.approx(1.0)
    assert by_pos[2].contributions == pytest.approx({"a": 0.5, "b": 0.5})
    assert by_pos[3].score == pytest.approx(0.25)
    assert [f.position for f in fused] == [1, 2, 3]  # ties broken by position
    assert by_pos[1].because == {"a": 7}
    assert all(sum(f.contributions.values()) == pytest.approx(f.score) for f in fused)


def test_zero_or_missing_weight_source_is_ignored_and_k_truncates() -> None:
    fused = fuse({"a": _cands([1, 2, 3], [3.0, 2.0, 1.0]), "b": _cands([9], [1.0])}, {"a": 1.0, "b": 0.0}, 2)
    assert [f.position for f in fused] == [1, 2]


def test_rrf_shares_depend_on_rank_only() -> None:
    assert shares(np.array([100.0, 1.0, 0.5]), "rrf", 60) == pytest.approx([1.0, 61 / 62, 61 / 63])
    assert shares(np.array([4.0, 1.0]), "weighted") == pytest.approx([1.0, 0.25])
