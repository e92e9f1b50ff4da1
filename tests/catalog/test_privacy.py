from __future__ import annotations

from pathlib import Path

from shopfusion.catalog.ingest import ColumnMapping, ingest_file
from shopfusion.catalog.privacy import Pseudonymiser, user_key_function
from shopfusion.catalog.store import SqlStore
from shopfusion.workspace import Workspace


def test_ingest_stores_only_pseudonyms(tmp_path: Path, transactions_csv: Path, retail_mapping: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.config_path.write_text("pseudonymise_users = true\n")
    key = user_key_function(ws)
    assert isinstance(key, Pseudonymiser)
    store = SqlStore(ws.store_url())
    mapping = ColumnMapping.from_toml(retail_mapping)
    ingest_file(store, "events", transactions_csv, mapping, user_key=key)
    stored = set(store.events_frame()["user_id"])
    assert "1" not in stored and key("1") in stored
    assert all(u.startswith("p_") for u in stored)
    again = ingest_file(store, "events", transactions_csv, mapping, user_key=user_key_function(ws))
    assert again.counts.inserted == 0  # the same secret gives the same pseudonyms: still idempotent


def test_pseudonyms_depend_on_the_workspace_secret(tmp_path: Path) -> None:
    one, two = Pseudonymiser.for_workspace(tmp_path / "a"), Pseudonymiser.for_workspace(tmp_path / "b")
    assert one("17850") == Pseudonymiser.for_workspace(tmp_path / "a")("17850") != two("17850")
    assert user_key_function(Workspace.init(tmp_path / "plain"))("17850") == "17850"
