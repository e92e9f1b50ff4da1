"""Business rules and diversity applied after fusion: out-of-stock never shown, boost/bury/pin,
category/brand caps and MMR (λ × relevance − (1 − λ) × max similarity to what is already chosen)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopfusion.rank.fusion import Fused
from shopfusion.settings import RecommendSettings


def _matches(key: str, item_ids: pd.Series, categories: pd.Series) -> np.ndarray:
    """A rule key is an item id, or 'category:PREFIX' for every item whose category path starts with it."""
    if key.startswith("category:"):
        return categories.str.startswith(key.removeprefix("category:")).to_numpy()
    return (item_ids == key).to_numpy()


class Rules:
    """Precomputed per catalogue once, so applying them to a request costs only the candidate list."""

    def __init__(self, frame: pd.DataFrame, vectors: np.ndarray, settings: RecommendSettings) -> None:
        self.settings = settings
        self.vectors = vectors
        item_ids = frame["item_id"].astype(str)
        categories = frame["category_path"].fillna("").astype(str)
        self.available = frame["available"].fillna(True).to_numpy(dtype=bool)
        self.multiplier = np.ones(len(frame), dtype=np.float32)
        for key, factor in settings.boost.items():
            self.multiplier[_matches(key, item_ids, categories)] *= factor
        self.buried = np.zeros(len(frame), dtype=bool)
        for key in settings.bury:
            self.buried |= _matches(key, item_ids, categories)
        index = pd.Index(item_ids)
        self.pins = sorted(
            (position, int(pos))
            for item, position in settings.pin.items()
            if (pos := int(index.get_indexer(pd.Index([item]))[0])) >= 0 and self.available[pos]
        )
        self.category = pd.factorize(categories)[0]
        self.brand = pd.factorize(frame["brand"].fillna("").astype(str))[0]
        self.has_brand = frame["brand"].notna().to_numpy()

    def apply(self, fused: list[Fused], k: int) -> list[Fused]:
        pinned = {pos for _, pos in self.pins}
        pool = [f for f in fused if self.available[f.position] and f.position not in pinned]
        for f in pool:
            f.score *= float(self.multiplier[f.position])
        pool.sort(key=lambda f: (bool(self.buried[f.position]), -f.score, f.position))
        chosen = self._diversify(pool, k)
        for position, pos in self.pins:
            chosen.insert(min(position - 1, len(chosen)), Fused(pos, contributions={"pin": 1.0}))
        return chosen[:k]

    def _diversify(self, pool: list[Fused], k: int) -> list[Fused]:
        """Greedy pick under the caps; with λ < 1 each pick trades relevance against similarity (MMR)."""
        lam = self.settings.mmr_lambda
        caps = self.settings.max_per_category, self.settings.max_per_brand
        per_category: dict[int, int] = {}
        per_brand: dict[int, int] = {}
        chosen: list[Fused] = []
        remaining = list(pool)
        if lam < 1 and remaining:
            top = max(f.score for f in remaining) or 1.0
        while remaining and len(chosen) < k:
            if lam < 1 and chosen:
                sims = self.vectors[[f.position for f in remaining]] @ self.vectors[[f.position for f in chosen]].T
                mmr = [lam * f.score / top - (1 - lam) * s for f, s in zip(remaining, sims.max(axis=1), strict=True)]
                pick = int(np.argmax(mmr))
            else:
                pick = 0
            f = remaining.pop(pick)
            cat, brand = int(self.category[f.position]), int(self.brand[f.position])
            if caps[0] is not None and per_category.get(cat, 0) >= caps[0]:
                continue
            if caps[1] is not None and self.has_brand[f.position] and per_brand.get(brand, 0) >= caps[1]:
                continue
            per_category[cat] = per_category.get(cat, 0) + 1
            per_brand[brand] = per_brand.get(brand, 0) + 1
            chosen.append(f)
        return chosen
