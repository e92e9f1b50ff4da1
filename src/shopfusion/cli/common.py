"""What every command shares: the consoles, the common options, error exits, and opening a workspace or engine."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shopfusion.catalog.ingest import ColumnMapping
from shopfusion.workspace import Workspace, WorkspaceError

if TYPE_CHECKING:
    from shopfusion.engine import Engine

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", envvar="SHOPFUSION_WORKSPACE", help="Workspace folder (config, store, indexes)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
MappingOpt = Annotated[
    Path | None, typer.Option("--mapping", "-m", help="TOML mapping file: [columns], [constants], attributes.")
]
MapOpt = Annotated[
    list[str] | None, typer.Option("--map", help="FIELD=SOURCE_COLUMN, repeatable (wins over --mapping).")
]
ConstOpt = Annotated[list[str] | None, typer.Option("--const", help="FIELD=VALUE for every row, e.g. type=purchase.")]


def fail(message: str) -> typer.Exit:
    """The exit (code 2) to raise after printing `message` as an error."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def open_workspace(workspace: Path) -> Workspace:
    try:
        return Workspace.open(workspace)
    except WorkspaceError as exc:
        raise fail(str(exc)) from exc


def open_engine(workspace: Path) -> Engine:
    from shopfusion.engine import Engine

    try:
        return Engine(open_workspace(workspace))
    except WorkspaceError as exc:
        raise fail(str(exc)) from exc


def column_mapping(mapping: Path | None, column: list[str] | None, constant: list[str] | None) -> ColumnMapping:
    """The mapping file's columns and constants, overridden by --map / --const flags."""
    base = ColumnMapping.from_toml(mapping) if mapping else ColumnMapping()
    return base.merged(ColumnMapping(columns=pairs(column or [], "--map"), constants=pairs(constant or [], "--const")))


def pairs(values: list[str], flag: str) -> dict[str, str]:
    """FIELD=VALUE flags as a dict; a malformed one is an error naming `flag`."""
    found = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip():
            raise fail(f"{flag} expects FIELD=VALUE, got {value!r}")
        found[name.strip()] = rest.strip()
    return found


def print_results(title: str, results: list[Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps({"results": [asdict(r) for r in results]}, default=str))
        return
    table = Table(title=title)
    for name, justify in (
        ("#", "right"),
        ("item", "left"),
        ("title", "left"),
        ("price", "right"),
        ("why", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for rank, r in enumerate(results, 1):
        price = "" if r.price is None else f"{r.price:.2f}"
        table.add_row(str(rank), r.item_id, r.title, price, r.reason)
    console.print(table)
