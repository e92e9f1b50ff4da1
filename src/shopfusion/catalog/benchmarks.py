"""Readers of benchmark files (../shared/data/README.md): search judgements and catalogues, recommendation
catalogues and interaction splits. Evaluation and training read them; a malformed file is one error type.

Search: products.csv (item_id,title[,...]), queries.tsv (query_id<TAB>query), qrels.tsv
(query_id<TAB>item_id<TAB>grade). Recommendation: items.csv (item_id,title[,price,...]) and interactions
(user_id,item_id,timestamp[,event,order_id,quantity], .csv or .csv.gz, timestamp ISO or an integer order).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from shopfusion.catalog.ingest import ColumnMapping, read_frames, resolve_mapping, row_to_fields
from shopfusion.catalog.schema import EventType, Item

Qrels = dict[str, dict[str, float]]  # query id → item id → grade
SECONDS_PER_POSITION = 86_400  # an integer-order timestamp steps one day per position (see load_interactions)


class BenchmarkFileError(ValueError):
    """A benchmark file without the columns or values its format needs."""


def load_products(path: Path) -> tuple[list[Item], int]:
    """Items from a products file (extra columns become attributes; a repeated item_id keeps its last row);
    also the number of rows skipped as invalid."""
    items: dict[str, Item] = {}
    skipped = 0
    mapping = None
    for frame in read_frames(path):
        mapping = mapping or resolve_mapping("items", ColumnMapping(), list(frame.columns))
        if "item_id" not in mapping.columns or "title" not in mapping.columns:
            raise BenchmarkFileError(f"{path}: needs item_id and title columns, has {list(frame.columns)}")
        for row in frame.to_dict("records"):
            try:
                item = Item(**row_to_fields(row, mapping))
                items[item.item_id] = item
            except ValidationError:
                skipped += 1
    return list(items.values()), skipped


def _tsv_rows(path: Path, columns: int) -> list[list[str]]:
    """Non-blank rows of at least `columns` tab-separated fields, without a `query_id` header row."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if r and any(c.strip() for c in r)]
    if rows and len(rows[0]) >= columns and rows[0][0].strip().lower() == "query_id":
        rows = rows[1:]
    bad = [i for i, r in enumerate(rows, 1) if len(r) < columns]
    if bad:
        raise BenchmarkFileError(f"{path}: row {bad[0]} has fewer than {columns} tab-separated columns")
    return rows


def load_queries(path: Path) -> dict[str, str]:
    return {r[0].strip(): r[1].strip() for r in _tsv_rows(path, 2)}


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    for r in _tsv_rows(path, 3):
        try:
            qrels.setdefault(r[0].strip(), {})[r[1].strip()] = float(r[2])
        except ValueError as exc:
            raise BenchmarkFileError(f"{path}: grade {r[2]!r} is not a number") from exc
    return qrels


def load_items_frame(path: Path) -> pd.DataFrame:
    """A catalogue frame in the snapshot's columns; brand/category/available are used when present."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"item_id", "title"} <= set(frame.columns):
        raise BenchmarkFileError(f"{path}: needs item_id and title columns, has {list(frame.columns)}")
    frame = frame[frame["item_id"].str.strip() != ""].drop_duplicates("item_id")

    def column(name: str) -> pd.Series:
        return frame[name] if name in frame.columns else pd.Series("", index=frame.index)

    price = pd.to_numeric(column("price"), errors="coerce")
    available = ~column("available").str.lower().isin({"false", "0", "no"})
    return pd.DataFrame(
        {
            "item_id": frame["item_id"].str.strip(),
            "title": frame["title"].str.strip(),
            "brand": column("brand").replace("", None),
            "category_path": column("category"),
            "price": price,
            "currency": None,
            "image": None,
            "available": available,
            "attributes": "{}",
            "created_at": None,
        }
    ).reset_index(drop=True)


def load_interactions(path: Path) -> pd.DataFrame:
    """user_id, item_id, type (the file's `event`, purchase without one), timestamp (UTC), order_id.

    Integer timestamps in these files are an order (a position in the user's sequence), not a time: each
    position is taken as one day, converted to epoch seconds (what an integer means at ingest), so that time
    decay counted in days tells consecutive positions apart."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"user_id", "item_id", "timestamp"} - set(frame.columns)
    if missing:
        raise BenchmarkFileError(f"{path}: missing columns {sorted(missing)}")
    numeric = pd.to_numeric(frame["timestamp"], errors="coerce")
    if numeric.notna().all():
        timestamp = pd.to_datetime(numeric * SECONDS_PER_POSITION, unit="s", utc=True)
    else:
        timestamp = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="mixed")
    if timestamp.isna().any():
        raise BenchmarkFileError(f"{path}: {int(timestamp.isna().sum())} timestamps are neither ISO nor integers")
    event = frame["event"] if "event" in frame.columns else pd.Series(EventType.PURCHASE.value, index=frame.index)
    return pd.DataFrame(
        {
            "user_id": frame["user_id"].str.strip(),
            "item_id": frame["item_id"].str.strip(),
            "type": event,
            "timestamp": timestamp,
            "order_id": frame["order_id"].replace("", None) if "order_id" in frame.columns else None,
        }
    )
