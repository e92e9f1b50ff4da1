"""Commands on the workspace and its store: `init`, `ingest`, `stats`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shopfusion.build.artifacts import read_manifest
from shopfusion.catalog.ingest import KINDS, IngestError, ingest_file
from shopfusion.catalog.privacy import user_key_function
from shopfusion.catalog.store import open_store
from shopfusion.cli.common import (
    ConstOpt,
    JsonOpt,
    MapOpt,
    MappingOpt,
    WorkspaceOpt,
    column_mapping,
    console,
    fail,
    open_workspace,
)
from shopfusion.workspace import MANIFEST_FILE, Workspace


def init(workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Create a workspace folder with a default shopfusion.toml."""
    ws = Workspace.init(workspace)
    console.print(f"workspace ready: {ws.root} (config: {ws.config_path.name})")


def ingest(
    kind: Annotated[str, typer.Argument(help=f"What the file holds: {' | '.join(KINDS)}.")],
    path: Annotated[Path, typer.Argument(help="CSV, TSV, JSONL or Parquet file, optionally .gz.")],
    workspace: WorkspaceOpt = Path("workspace"),
    mapping: MappingOpt = None,
    column: MapOpt = None,
    constant: ConstOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load items, users or events; invalid rows go to a rejects file with row, field and reason."""
    ws = Workspace.init(workspace)
    try:
        columns = column_mapping(mapping, column, constant)
        store = open_store(ws.store_url())
        try:
            summary = ingest_file(store, kind, path, columns, ws.rejects_dir, user_key_function(ws))
        finally:
            store.close()
    except IngestError as exc:
        raise fail(f"nothing loaded: {exc}") from exc
    report = summary.as_dict()
    if as_json:
        console.print_json(json.dumps(report))
        return
    console.print(
        f"{kind}: {report['rows']} rows read, [green]{report['loaded']} loaded[/], {report['updated']} updated, "
        f"{report['unchanged']} unchanged, [red]{report['rejected']} rejected[/]"
    )
    for reason, count in report["reject_reasons"].items():
        console.print(f"  rejected {count:>7}  {reason}")
    if report["rejects_file"]:
        console.print(f"  rejects with row numbers: {report['rejects_file']}")
    if report["ignored_columns"]:
        console.print(f"  ignored columns: {', '.join(report['ignored_columns'])}")


def stats(workspace: WorkspaceOpt = Path("workspace"), as_json: JsonOpt = False) -> None:
    """Counts in the store and what the last build produced."""
    ws = open_workspace(workspace)
    store = open_store(ws.store_url())
    try:
        info: dict[str, Any] = {"workspace": str(ws.root), "store": store.counts()}
    finally:
        store.close()
    if (ws.artifacts_dir / MANIFEST_FILE).exists():
        info["build"] = read_manifest(ws.artifacts_dir)
    if as_json:
        console.print_json(json.dumps(info, default=str))
        return
    table = Table(title=f"ShopFusion workspace {ws.root}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for kind, count in info["store"].items():
        table.add_row(kind, str(count))
    for key, value in info.get("build", {}).items():
        table.add_row(f"build.{key}", str(value))
    console.print(table)
