"""`demo`: the shipped Online Retail slice ingested, built and queried, as a first look at every part."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shopfusion.cli.common import WorkspaceOpt, console, fail, open_engine
from shopfusion.cli.query import recommend, search
from shopfusion.cli.training import build_command
from shopfusion.cli.workspace import ingest

DEMO_DATA = Path(__file__).resolve().parents[3] / "demo" / "online-retail"
DEMO_QUERIES = ("christmas decorations", "red tea cup", "lunch bag for kids", "candle holder heart")


def build_demo(workspace: Path, data: Path) -> None:
    if not (data / "items.csv").exists():
        raise fail(f"demo data not found in {data}")
    console.rule("1. ingest the catalogue and the raw transactions")
    ingest(kind="items", path=data / "items.csv", workspace=workspace, constant=["currency=GBP"])
    ingest(kind="events", path=data / "transactions.csv.gz", workspace=workspace, mapping=data / "events.mapping.toml")
    console.rule("2. encode, index, fit")
    build_command(workspace=workspace)


def show_demo(workspace: Path) -> None:
    console.rule("3. search")
    for query in DEMO_QUERIES:
        search(query=query, workspace=workspace, k=5)
    console.rule("4. recommendations")
    engine = open_engine(workspace)
    known_user = str(engine.recommend_service.interactions.user_ids[0])
    recommend(workspace=workspace, user=known_user, k=5)
    recommend(workspace=workspace, user="a-new-visitor", k=5)
    recommend(workspace=workspace, item=engine.search(DEMO_QUERIES[1], 1)[0].item_id, k=5)
    session = ",".join(r.item_id for r in engine.search(DEMO_QUERIES[3], 2))
    recommend(workspace=workspace, session=session, k=5)


def demo(
    workspace: WorkspaceOpt = Path("workspace"),
    data: Annotated[Path, typer.Option("--data", help="Folder with the demo slice.")] = DEMO_DATA,
) -> None:
    """Build a workspace from the shipped Online Retail slice and show search and recommendations."""
    build_demo(workspace, data)
    show_demo(workspace)
    console.print(f'\nworkspace: {Path(workspace).resolve()} — try `shopfusion search "..." -w {workspace}`')
