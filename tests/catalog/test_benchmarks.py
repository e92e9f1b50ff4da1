"""Benchmark file readers: search products and judgements, recommendation interactions, one error type."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shopfusion.catalog.benchmarks import (
    BenchmarkFileError,
    load_interactions,
    load_items_frame,
    load_products,
    load_qrels,
    load_queries,
)
from shopfusion.catalog.schema import Event

PRODUCTS = "item_id,title,brand,description\np1,Cordless drill 18 volt,Ryobi,Drill and driver kit\n"
QUERIES = "query_id\tquery\nq1\tcordless drill\nq2\tgarden hose\n"
QRELS = "query_id\titem_id\tgrade\nq1\tp1\t2\nq2\tp3\t2\nq2\tp4\t0.5\n"


def test_search_loaders_use_extra_columns(tmp_path: Path) -> None:
    for name, text in (("products.csv", PRODUCTS), ("queries.tsv", QUERIES), ("qrels.tsv", QRELS)):
        (tmp_path / name).write_text(text)
    items, skipped = load_products(tmp_path / "products.csv")
    assert skipped == 0 and items[0].brand == "Ryobi" and items[0].description == "Drill and driver kit"
    assert load_queries(tmp_path / "queries.tsv")["q2"] == "garden hose"
    assert load_qrels(tmp_path / "qrels.tsv")["q2"] == {"p3": 2.0, "p4": 0.5}


def test_invalid_and_repeated_products(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("item_id,title\np1,First\np2,\np1,First again\n")
    items, skipped = load_products(tmp_path / "p.csv")
    assert skipped == 1 and [(i.item_id, i.title) for i in items] == [("p1", "First again")]


def test_malformed_files_raise_one_error_type(tmp_path: Path) -> None:
    (tmp_path / "r.tsv").write_text("q1\tp1\thigh\n")
    with pytest.raises(BenchmarkFileError, match="not a number"):
        load_qrels(tmp_path / "r.tsv")
    (tmp_path / "r.tsv").write_text("q1\tp1\n")
    with pytest.raises(BenchmarkFileError, match="fewer than 3"):
        load_qrels(tmp_path / "r.tsv")
    (tmp_path / "p.csv").write_text("item_id,label\np1,First\n")
    for load in (load_products, load_items_frame):
        with pytest.raises(BenchmarkFileError, match="needs item_id and title"):
            load(tmp_path / "p.csv")
    (tmp_path / "i.csv").write_text("user_id,item_id\nu,a\n")
    with pytest.raises(BenchmarkFileError, match="missing columns"):
        load_interactions(tmp_path / "i.csv")


def test_integer_order_is_one_day_per_position_and_iso_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "timestamp": [0, 3]}).to_csv(path, index=False)
    frame = load_interactions(path)
    assert (frame["timestamp"].iloc[1] - frame["timestamp"].iloc[0]).days == 3
    assert (frame["type"] == "purchase").all()
    pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": ["2024-01-02T10:00:00"]}).to_csv(path, index=False)
    assert load_interactions(path)["timestamp"].iloc[0].year == 2024


def test_an_integer_timestamp_means_epoch_seconds_at_ingest_and_in_benchmarks(tmp_path: Path) -> None:
    path = tmp_path / "i.csv"
    pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": ["2024-01-02T10:00:00"]}).to_csv(path, index=False)
    iso = load_interactions(path)["timestamp"].iloc[0]
    ingested = Event(type="purchase", user_id="u", item_id="a", timestamp=str(int(iso.timestamp())))
    assert ingested.timestamp == iso.to_pydatetime()
    pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": [2]}).to_csv(path, index=False)
    assert load_interactions(path)["timestamp"].iloc[0] == pd.Timestamp(
        Event(type="purchase", user_id="u", item_id="a", timestamp=2 * 86_400).timestamp
    )
