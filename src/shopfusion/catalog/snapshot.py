"""The serving snapshot of the catalogue: what filters, facets and result cards need, in index order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from shopfusion.catalog.schema import Item, category_path
from shopfusion.results import ResultItem

SNAPSHOT_FILE = "catalog.parquet"


class CatalogSnapshot:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame.reset_index(drop=True)
        self.positions = pd.Index(self.frame["item_id"])
        # result cards read these per result: plain lists, as pandas scalar access costs ~20 µs a value
        self._ids = [str(i) for i in self.frame["item_id"]]
        self._titles = [str(t).strip() for t in self.frame["title"]]
        self._prices = [None if pd.isna(p) else float(p) for p in self.frame["price"]]
        self._categories = [str(c) for c in self.frame["category_path"]]

    @classmethod
    def from_items(cls, items: list[Item]) -> CatalogSnapshot:
        return cls(
            pd.DataFrame(
                {
                    "item_id": [i.item_id for i in items],
                    "title": [i.title for i in items],
                    "brand": [i.brand for i in items],
                    "category_path": [category_path(i.category) for i in items],
                    "price": [i.price for i in items],
                    "currency": [i.currency for i in items],
                    "image": [i.image for i in items],
                    "available": [i.available for i in items],
                    "attributes": [json.dumps(i.attributes) for i in items],
                    "created_at": [i.created_at for i in items],
                }
            )
        )

    def with_item(self, item: Item) -> CatalogSnapshot:
        """A copy with `item` written: its row replaced where the id is known (positions stay), else appended."""
        row = CatalogSnapshot.from_items([item]).frame
        position = self.position(item.item_id)
        parts = [self.frame, row] if position is None else [self.frame[:position], row, self.frame[position + 1 :]]
        return CatalogSnapshot(pd.concat(parts, ignore_index=True))

    def __len__(self) -> int:
        return len(self.frame)

    def save(self, folder: Path) -> None:
        self.frame.to_parquet(folder / SNAPSHOT_FILE)

    @classmethod
    def load(cls, folder: Path) -> CatalogSnapshot:
        return cls(pd.read_parquet(folder / SNAPSHOT_FILE))

    def position(self, item_id: str) -> int | None:
        pos = int(self.positions.get_indexer([item_id])[0])
        return None if pos < 0 else pos

    def texts(self) -> list[str]:
        """Each item's title, brand and category as one text (what term features read)."""
        parts = self.frame[["title", "brand", "category_path"]].fillna("").astype(str)
        return [". ".join(p for p in row if p) for row in parts.itertuples(index=False)]

    def title(self, position: int) -> str:
        return self._titles[position]

    def item_id(self, position: int) -> str:
        return self._ids[position]

    def result(self, position: int, score: float, reason: str, signals: dict[str, Any] | None = None) -> ResultItem:
        return ResultItem(
            self._ids[position],
            self._titles[position],
            self._prices[position],
            self._categories[position],
            score,
            reason,
            signals or {},
        )
