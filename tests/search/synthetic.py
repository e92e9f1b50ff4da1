"""A generated shop whose shoppers use their own words: each product type has a slang name that appears in no
title, so only a model trained on the shop's judgements can connect query and product."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from shopfusion.workspace import Workspace

TYPES = {
    "cordless drill": "zorvak",
    "garden hose": "plimmet",
    "ceiling fan": "drubble",
    "step ladder": "quintor",
    "table lamp": "frazzle",
    "area rug": "morbix",
    "office chair": "sklendo",
    "space heater": "vontrel",
}
COLOURS = ("red", "blue", "green", "black", "white", "grey")
BRANDS = ("Acme", "Borealis", "Cobalt", "Dynamo")
# Training settings that keep every learned stage to seconds on this shop.
FAST_TRAINING = """
[search.training]
bi_encoder_epochs = 2
bi_encoder_lr = 2e-4
bi_encoder_batch_size = 16
cross_encoder_epochs = 1
cross_encoder_batch_size = 16
cross_encoder_max_length = 24
ranker_share = 0.4
"""


def write_shop(
    folder: Path, train_colours: int = 4, types: int = len(TYPES), brands: int = len(BRANDS)
) -> dict[str, Path]:
    """products.csv plus train and test query/qrels files in the eval contract's formats; the test queries ask
    for colours no train query used."""
    chosen = dict(list(TYPES.items())[:types])
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["item_id,title"]
    items: list[tuple[str, str, str]] = []
    for t, product in enumerate(chosen):
        for c, colour in enumerate(COLOURS):
            for b, brand in enumerate(BRANDS[:brands]):
                item_id = f"i{t}{c}{b}"
                items.append((item_id, product, colour))
                rows.append(f"{item_id},{brand} {colour} {product} model {t}{c}{b}")
    paths = {"products": folder / "products.csv"}
    paths["products"].write_text("\n".join(rows) + "\n")
    for split, colours in (("train", COLOURS[:train_colours]), ("test", COLOURS[train_colours:])):
        queries, qrels = ["query_id\tquery"], ["query_id\titem_id\tgrade"]
        for product, slang in chosen.items():
            for colour in colours:
                qid = f"{split}-{slang}-{colour}"
                queries.append(f"{qid}\t{colour} {slang}")
                for item_id, p, c in items:
                    if p == product:
                        qrels.append(f"{qid}\t{item_id}\t{2 if c == colour else 1}")
        paths[f"{split}_queries"] = folder / f"{split}_queries.tsv"
        paths[f"{split}_qrels"] = folder / f"{split}_qrels.tsv"
        paths[f"{split}_queries"].write_text("\n".join(queries) + "\n")
        paths[f"{split}_qrels"].write_text("\n".join(qrels) + "\n")
    return paths


def built_shop(folder: Path) -> tuple[Workspace, dict[str, Path]]:
    """The generated shop (see `write_shop`) ingested and built in `folder / "ws"` with fast training
    settings; also its files."""
    from shopfusion.build.builder import build
    from shopfusion.catalog.ingest import ColumnMapping, ingest_file
    from shopfusion.catalog.store import open_store

    files = write_shop(folder / "data", train_colours=4, types=6, brands=3)
    ws = Workspace.init(folder / "ws")
    ws.config_path.write_text(FAST_TRAINING)
    store = open_store(ws.store_url(ws.settings))
    ingest_file(store, "items", files["products"], ColumnMapping())
    store.close()
    build(ws)
    return ws, files


def search_events(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """What shoppers did instead of judging: per query, one session searches and clicks every item graded 1,
    another searches and buys every item graded above 1 in one order; plus a click too late to count."""
    rows: list[dict[str, object]] = []
    start = datetime(2024, 3, 1, tzinfo=UTC)
    for n, (qid, text) in enumerate(queries.items()):
        at = start + timedelta(hours=n)
        for session, grade_one in ((f"{qid}-look", True), (f"{qid}-buy", False)):
            rows.append({"type": "search", "timestamp": at, "session_id": session, "query": text})
            picked = [i for i, g in qrels[qid].items() if (g == 1) == grade_one]
            for m, item_id in enumerate(picked, 1):
                kinds = ("click",) if grade_one else ("add_to_cart", "purchase")
                for kind in kinds:
                    rows.append(
                        {
                            "type": kind,
                            "timestamp": at + timedelta(minutes=m),
                            "session_id": session,
                            "item_id": item_id,
                            "order_id": None if grade_one else f"o-{qid}",
                        }
                    )
        rows.append(
            {"type": "click", "timestamp": at + timedelta(hours=2), "session_id": f"{qid}-look", "item_id": "i000"}
        )
    return pd.DataFrame(rows)
