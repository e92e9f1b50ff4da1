"""`eval search` and `eval recommend`: every method side by side on a benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shopfusion.cli.common import console, fail

eval_app = typer.Typer(help="Offline evaluation: every method side by side on a benchmark.", no_args_is_help=True)


@eval_app.command("search")
def eval_search(
    products: Annotated[Path, typer.Option("--products", help="products.csv: item_id,title[,...]")],
    queries: Annotated[Path, typer.Option("--queries", help="queries.tsv: query_id<TAB>query")],
    qrels: Annotated[Path, typer.Option("--qrels", help="qrels.tsv: query_id<TAB>item_id<TAB>grade")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the JSON report.")],
    train_queries: Annotated[
        Path | None, typer.Option("--train-queries", help="Queries the default pipeline may learn from.")
    ] = None,
    train_qrels: Annotated[
        Path | None, typer.Option("--train-qrels", help="Judgements the default pipeline may learn from.")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off for nDCG and MRR.")] = 10,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Folder for caches and models (default: a temp dir)."),
    ] = None,
) -> None:
    """Rank the whole catalogue for each query with every method; nDCG@k, Recall@100, MRR@k."""
    from shopfusion.evaluate.search_eval import run_search_eval

    if (train_queries is None) != (train_qrels is None):
        raise fail("--train-queries and --train-qrels go together")
    run_search_eval(
        products=products,
        queries=queries,
        qrels=qrels,
        json_out=json_out,
        train_queries=train_queries,
        train_qrels=train_qrels,
        k=k,
        workspace=workspace,
        console=console,
    )


@eval_app.command("recommend")
def eval_recommend(
    items: Annotated[Path, typer.Option("--items", help="items.csv: item_id,title[,price,...]")],
    train: Annotated[Path, typer.Option("--train", help="Interactions to learn from: user_id,item_id,timestamp,...")],
    test: Annotated[Path, typer.Option("--test", help="Held-out interactions to predict, same columns.")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the JSON report.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off for Recall and nDCG.")] = 10,
    exclude_seen: Annotated[
        bool, typer.Option("--exclude-seen", help="Never recommend items the user already had in TRAIN.")
    ] = False,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Folder for caches and models (default: a temp dir)."),
    ] = None,
) -> None:
    """Rank the whole catalogue for each test user with every source and the fused default."""
    from shopfusion.evaluate.recommend_eval import run_recommend_eval

    run_recommend_eval(
        items=items,
        train=train,
        test=test,
        json_out=json_out,
        k=k,
        exclude_seen=exclude_seen,
        workspace=workspace,
        console=console,
    )
