from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from shopfusion.catalog.ingest import ColumnMapping, IngestError, ingest_file
from shopfusion.catalog.store import SqlStore


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    return SqlStore(f"sqlite:///{tmp_path / 'store.sqlite'}")


def test_retail_transactions_load_with_rejects(
    store: SqlStore, transactions_csv: Path, retail_mapping: Path, tmp_path: Path
) -> None:
    summary = ingest_file(store, "events", transactions_csv, ColumnMapping.from_toml(retail_mapping), tmp_path / "rej")
    raw = pd.read_csv(transactions_csv)
    assert summary.rows == len(raw)
    assert summary.rejected == 2
    assert summary.counts.inserted == len(raw) - 2
    assert store.counts()["events"] == len(raw) - 2
    assert summary.rejects_path is not None
    with summary.rejects_path.open() as handle:
        rejects = {r["field"]: r for r in csv.DictReader(handle)}
    assert set(rejects) == {"quantity", "user_id"}
    # row numbers count data rows from 1: the cancellation and the guest are the last two rows
    assert int(rejects["quantity"]["row"]) == len(raw) - 1
    assert int(rejects["user_id"]["row"]) == len(raw)
    assert "cancellation" in rejects["quantity"]["reason"]
    assert json.loads(rejects["quantity"]["raw"])["InvoiceNo"] == "C9999"


def test_ingest_twice_changes_nothing(
    store: SqlStore, transactions_csv: Path, retail_mapping: Path, items_csv: Path
) -> None:
    mapping = ColumnMapping.from_toml(retail_mapping)
    first = ingest_file(store, "events", transactions_csv, mapping)
    ingest_file(store, "items", items_csv)
    before = store.counts()
    again = ingest_file(store, "events", transactions_csv, mapping)
    items_again = ingest_file(store, "items", items_csv)
    assert store.counts() == before
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, first.counts.inserted)
    assert items_again.counts.unchanged == before["items"]


def test_duplicate_rows_are_distinct_events(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,type,timestamp\nu,i,view,2024-01-01\nu,i,view,2024-01-01\n")
    assert ingest_file(store, "events", path).counts.inserted == 2
    assert ingest_file(store, "events", path).counts.unchanged == 2


def test_changed_item_is_updated_not_duplicated(store: SqlStore, items_csv: Path, tmp_path: Path) -> None:
    ingest_file(store, "items", items_csv)
    changed = pd.read_csv(items_csv)
    changed.loc[0, "price"] = 1.0
    path = tmp_path / "items2.csv"
    changed.to_csv(path, index=False)
    summary = ingest_file(store, "items", path)
    assert (summary.counts.inserted, summary.counts.updated) == (0, 1)
    assert store.get_items(["A1"])["A1"].price == 1.0


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "parquet", "csv.gz", "jsonl.gz"])
def test_formats(store: SqlStore, items_csv: Path, tmp_path: Path, fmt: str) -> None:
    frame = pd.read_csv(items_csv)
    path = tmp_path / f"items.{fmt}"
    if fmt.startswith("tsv"):
        frame.to_csv(path, sep="\t", index=False)
    elif fmt.startswith("jsonl"):
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    summary = ingest_file(store, "items", path)
    assert summary.counts.inserted == len(frame) and summary.rejected == 0
    assert store.get_items(["A3"])["A3"].category == ["Shoes", "Hiking"]


def test_mapping_flags_and_extra_columns_as_attributes(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text("sku,name,colour,cost\n1,Red mug,red,3\n2,,blue,4\n3,Blue mug,blue,-1\n")
    mapping = ColumnMapping(columns={"item_id": "sku", "title": "name", "price": "cost"})
    summary = ingest_file(store, "items", path, mapping, tmp_path / "rej")
    assert summary.counts.inserted == 1
    assert summary.reasons == {
        "title: required field is missing or empty": 1,
        "price: Input should be greater than or equal to 0": 1,
    }
    assert store.get_items(["1"])["1"].attributes == {"colour": "red"}


def test_bad_mapping_loads_nothing(store: SqlStore, items_csv: Path) -> None:
    with pytest.raises(IngestError, match="not in the file"):
        ingest_file(store, "items", items_csv, ColumnMapping(columns={"title": "name"}))
    with pytest.raises(IngestError, match="unknown items field"):
        ingest_file(store, "items", items_csv, ColumnMapping(constants={"colour": "red"}))
    assert store.counts()["items"] == 0


def test_failure_mid_ingest_rolls_back(
    store: SqlStore, transactions_csv: Path, retail_mapping: Path, items_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_file(store, "items", items_csv)
    before = store.counts()
    import shopfusion.catalog.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 10)
    calls = {"n": 0}
    original = ingest_module.read_frames

    def failing_frames(path: Path, chunk_rows: int = 10):  # type: ignore[no-untyped-def]
        for frame in original(path, 10):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("disk went away")
            yield frame

    monkeypatch.setattr(ingest_module, "read_frames", failing_frames)
    with pytest.raises(OSError):
        ingest_file(store, "events", transactions_csv, ColumnMapping.from_toml(retail_mapping))
    assert store.counts() == before


def test_killed_ingest_leaves_a_valid_workspace(transactions_csv: Path, retail_mapping: Path, tmp_path: Path) -> None:
    """A real SIGKILL in the middle of the transaction: the store opens fine and holds what it held before."""
    db = tmp_path / "store.sqlite"
    store = SqlStore(f"sqlite:///{db}")
    ingest_file(store, "events", transactions_csv, ColumnMapping.from_toml(retail_mapping))
    before = store.counts()
    store.close()
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        import shopfusion.catalog.store as store_module
        from shopfusion.catalog.ingest import ColumnMapping, ingest_file
        original = store_module._SqlWriter.upsert
        def upsert_then_die(self, kind, keyed):
            counts = original(self, kind, keyed)
            os.kill(os.getpid(), signal.SIGKILL)
            return counts
        store_module._SqlWriter.upsert = upsert_then_die
        path = Path({str(tmp_path / "more.csv")!r})
        path.write_text("user_id,item_id,type,timestamp\\n" + "".join(f"u{{i}},x,view,{{i}}\\n" for i in range(500)))
        store = store_module.SqlStore("sqlite:///{db}")
        ingest_file(store, "events", path)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert SqlStore(f"sqlite:///{db}").counts() == before


def test_common_column_names_map_themselves(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text(
        "user_id,item_id,timestamp,order_id,quantity,event\n17850,21730,2010-12-01 08:26:00,536365,6,purchase\n"
    )
    assert ingest_file(store, "events", path).counts.inserted == 1
    assert store.events_frame().loc[0, "type"] == "purchase"


def test_users_with_attributes(store: SqlStore, tmp_path: Path) -> None:
    path = tmp_path / "users.jsonl"
    path.write_text('{"user_id": "u1", "country": "UK", "segment": "b2b"}\n{"user_id": ""}\n')
    summary = ingest_file(store, "users", path)
    assert (summary.counts.inserted, summary.rejected) == (1, 1)
    assert summary.reasons == {"user_id: required field is missing or empty": 1}
