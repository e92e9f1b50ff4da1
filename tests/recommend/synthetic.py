"""Generated shop data for recommendation tests: two clusters of shoppers, orders, a new item without events."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopfusion.catalog.schema import Item
from shopfusion.catalog.snapshot import CatalogSnapshot
from tests.conftest import ITEMS, HashingEncoder

SPORT = ["A1", "A2", "A3", "A4", "A5", "A6"]
HOME = ["A8", "A9", "A10", "A7"]
NEW_ITEM = ("A11", "Green running shoes", "Shoes > Running", "Swift", 61.0)  # no events at all


def catalog(out_of_stock: tuple[str, ...] = ()) -> CatalogSnapshot:
    items = [
        Item(item_id=i, title=t, category=c.split(" > "), brand=b, price=p, available=i not in out_of_stock)
        for i, t, c, b, p in [*ITEMS, NEW_ITEM]
    ]
    return CatalogSnapshot.from_items(items)


def vectors(snapshot: CatalogSnapshot) -> np.ndarray:
    texts = [f"{t} {c}" for t, c in zip(snapshot.frame["title"], snapshot.frame["category_path"], strict=True)]
    return HashingEncoder().encode(texts)


def events(n_users: int = 40, seed: int = 0) -> pd.DataFrame:
    """Even users shop sport, odd users home; A1 and A4 are always bought in the same order (complements)."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for u in range(n_users):
        cluster = SPORT if u % 2 == 0 else HOME
        for order in range(4):
            when = start + pd.Timedelta(days=7 * order + u % 5)
            basket = list(rng.choice(cluster, size=2, replace=False))
            if u % 2 == 0 and order % 2 == 0:
                basket = ["A1", "A4"]
            for item in basket:
                rows.append((f"u{u}", item, "purchase", when, f"o{u}-{order}"))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "type", "timestamp", "order_id"])
