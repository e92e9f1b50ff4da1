"""A generated shop whose shoppers use their own words: each product type has a slang name that appears in no
title, so only a model trained on the shop's judgements can connect query and product."""

from __future__ import annotations

from pathlib import Path

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
