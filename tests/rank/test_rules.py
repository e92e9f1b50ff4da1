"""Business rules after fusion: out-of-stock, boost/bury/pin, caps and MMR."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopfusion.rank.fusion import Fused
from shopfusion.rank.rules import Rules
from shopfusion.settings import RecommendSettings

FRAME = pd.DataFrame(
    {
        "item_id": ["p0", "p1", "p2", "p3", "p4", "p5"],
        "category_path": ["Shoes", "Shoes", "Shoes", "Home > Kitchen", "Home > Kitchen", "Toys"],
        "brand": ["Swift", "Swift", "Trail", "Regency", None, None],
        "available": [True, False, True, True, True, True],
    }
)
# p0 and p2 are near-duplicates; p3, p4, p5 point elsewhere
VECTORS = np.array([[1, 0, 0], [1, 0, 0], [0.99, 0.14, 0], [0, 1, 0], [0, 0.7, 0.71], [0, 0, 1]], dtype=np.float32)


def _ranked(scores: list[float]) -> list[Fused]:
    return [Fused(i, s, {"x": s}) for i, s in enumerate(scores)]


def _apply(k: int = 6, **settings: object) -> list[str]:
    rules = Rules(FRAME, VECTORS, RecommendSettings(**settings))  # type: ignore[arg-type]
    return [str(FRAME.at[f.position, "item_id"]) for f in rules.apply(_ranked([6, 5, 4, 3, 2, 1]), k)]


def test_out_of_stock_is_never_returned() -> None:
    assert "p1" not in _apply()
    assert _apply() == ["p0", "p2", "p3", "p4", "p5"]


def test_boost_bury_and_pin() -> None:
    assert _apply(boost={"p5": 10.0})[0] == "p5"
    assert _apply(boost={"category:Home": 0.1})[-2:] == ["p3", "p4"]
    assert _apply(bury=["p0"])[-1] == "p0"
    assert _apply(pin={"p4": 1, "p1": 2}, k=3) == ["p4", "p0", "p2"]  # out-of-stock pins are dropped too


def test_category_and_brand_caps() -> None:
    assert _apply(max_per_category=1) == ["p0", "p3", "p5"]
    assert _apply(max_per_brand=1) == ["p0", "p2", "p3", "p4", "p5"]  # unbranded items are not capped
    assert _apply(max_per_brand=1, k=2) == ["p0", "p2"]


def test_mmr_trades_relevance_for_diversity() -> None:
    assert _apply(k=3, mmr_lambda=1.0) == ["p0", "p2", "p3"]
    assert _apply(k=3, mmr_lambda=0.5) == ["p0", "p3", "p5"]
