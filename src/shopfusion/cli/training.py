"""Commands that build or retrain model versions: `build`, `train recommend`, `train search`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from shopfusion.build.artifacts import BuildError
from shopfusion.build.builder import build
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
from shopfusion.encoders.sentence import EncoderUnavailable

train_app = typer.Typer(help="Retrain one part of a built workspace as a new model version.", no_args_is_help=True)


def build_command(workspace: WorkspaceOpt = Path("workspace"), as_json: JsonOpt = False) -> None:
    """Encode items (cached), build the lexical and vector indexes and fit the recommenders."""
    ws = open_workspace(workspace)
    try:
        report = build(ws, show_progress=not as_json)
    except (BuildError, EncoderUnavailable) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(asdict(report)))
        return
    console.print(
        f"built {report.items} items ({report.encoded} encoded, {report.from_cache} from cache), "
        f"{report.events} events, {report.users_with_history} users, {report.vector_index} in {report.seconds}s"
    )


@train_app.command("recommend")
def train_recommend_command(workspace: WorkspaceOpt = Path("workspace"), as_json: JsonOpt = False) -> None:
    """Refit the recommenders (sources, sequential model, learned ranker) on the store's events."""
    from shopfusion.build.train_recommend import train_recommend

    ws = open_workspace(workspace)
    try:
        manifest = train_recommend(ws)
    except BuildError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(manifest))
        return
    summary: Any = manifest["recommend"]
    ranker = summary["ranker"]
    learned = f", ranker AUC {ranker['auc']} logloss {ranker['logloss']}" if ranker else ""
    console.print(
        f"recommenders trained on {manifest['events']} events ({summary['method']} ranking{learned}) "
        f"as {manifest['version']} in {manifest['seconds']}s"
    )


@train_app.command("search")
def train_search_command(
    queries: Annotated[
        Path | None, typer.Option("--queries", help="queries.tsv: query_id<TAB>query (with --qrels)")
    ] = None,
    qrels: Annotated[
        Path | None, typer.Option("--qrels", help="qrels.tsv: query_id<TAB>item_id<TAB>grade (with --queries)")
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="Events file as `ingest events` reads it: searches followed by clicks, add-to-carts and "
            "purchases become judgements (default without --queries/--qrels: the store's events); its columns "
            "are mapped with --mapping / --map / --const as for `ingest events`.",
        ),
    ] = None,
    mapping: MappingOpt = None,
    column: MapOpt = None,
    constant: ConstOpt = None,
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune the bi-encoder and the cross-encoder and train the rankers from graded judgements and from what
    shoppers clicked, put in the cart or bought after a search; the served search uses them from the next engine
    load (`serve` picks them up on POST /admin/reload)."""
    from shopfusion.build.artifacts import trained_search_dir
    from shopfusion.build.train_search import train_search
    from shopfusion.catalog.benchmarks import BenchmarkFileError
    from shopfusion.catalog.ingest import IngestError
    from shopfusion.search.training import MIN_TRAIN_QUERIES

    if (queries is None) != (qrels is None):
        raise fail("--queries and --qrels go together")
    ws = open_workspace(workspace)
    log = console.print if not as_json else lambda _: None
    try:
        columns = column_mapping(mapping, column, constant)
        report = train_search(ws, queries, qrels, log=log, events=events, events_mapping=columns)
    except (BuildError, EncoderUnavailable, BenchmarkFileError, IngestError, OSError) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(report))
        return
    judged: Any = report["judgements"]
    if report["learned_validation_ndcg"] is None:
        raise fail(
            f"{judged['queries']} judged queries ({judged['pairs']} query-item pairs, {judged['from_events']} from "
            f"events): too few to train and validate learned search (at least {MIN_TRAIN_QUERIES} queries), so "
            "search stays untrained. Give more with --queries/--qrels, or with events in which searches are "
            "followed by clicks, add-to-carts or purchases (--events FILE, or `shopfusion ingest events`)"
        )
    console.print(
        f"trained on {judged['queries']} judged queries ({judged['pairs']} query-item pairs, "
        f"{judged['from_events']} from events) and {judged['co_interaction_pairs']} co-interaction item pairs"
    )
    scores = (
        f"nDCG@10 learned {report['learned_validation_ndcg']:.4f} vs untrained {report['blend_validation_ndcg']:.4f}"
    )
    verdict = "served from the next engine load" if report["used"] else "not better, so search stays untrained"
    console.print(f"learned search in {trained_search_dir(ws)} ({scores} on held-out train queries): {verdict}")
