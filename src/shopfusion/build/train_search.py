"""`train search`: judgements from files and from behaviour events, then the learned search stages trained on
them over the served build's catalogue, replacing the learned search beside the builds atomically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from shopfusion.build.artifacts import (
    SEARCH_DIR,
    BuildError,
    item_texts,
    make_encoder,
    served_artifacts,
    trained_search_dir,
)
from shopfusion.catalog.benchmarks import Qrels, load_qrels, load_queries
from shopfusion.catalog.ingest import ColumnMapping, read_events
from shopfusion.catalog.schema import EventType
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.catalog.store import open_store
from shopfusion.encoders import resolve_model
from shopfusion.search.judgements import co_interaction_pairs, judgements_from_events, merge_judgements
from shopfusion.search.service import SearchService
from shopfusion.search.trained_files import serves_learned
from shopfusion.search.training import MIN_TRAIN_QUERIES, SearchTrainer
from shopfusion.settings import Settings
from shopfusion.workspace import Workspace, atomic_path

SEARCH_EVENT_TYPES = (EventType.SEARCH, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE)


def _store_events(ws: Workspace, settings: Settings) -> pd.DataFrame:
    store = open_store(ws.store_url(settings))
    try:
        return store.events_frame(SEARCH_EVENT_TYPES)
    finally:
        store.close()


def _search_judgements(
    ws: Workspace,
    settings: Settings,
    catalogue: list[str],
    queries: Path | None,
    qrels: Path | None,
    events: Path | None,
    events_mapping: ColumnMapping | None,
    log: Callable[[str], None],
) -> tuple[dict[str, str], Qrels, list[tuple[str, str]], dict[str, Any]]:
    """Judged queries and grades from the judgement files and from behaviour events (file grades win), the
    co-interaction item pairs of those events, and a summary of where they came from. Events come from the
    `events` file (validated as `ingest events` does, rejects written to the workspace), else from the store:
    the shop's own searches and what followed them always count."""
    if (queries is None) != (qrels is None):
        raise BuildError("judgement files go in pairs: give both queries and qrels, or neither")
    file_queries = load_queries(queries) if queries is not None else {}
    file_qrels = load_qrels(qrels) if qrels is not None else {}
    summary: dict[str, Any] = {"files": _positives(file_queries, file_qrels)}
    if events is not None:
        frame, read = read_events(events, events_mapping, rejects_dir=ws.rejects_dir)
        summary["events_file"] = read.as_dict()
        log(
            f"events file {events}: {read.rows} rows, {read.loaded} valid, {read.rejected} rejected"
            + (f" (rejects with row numbers: {read.rejects_path})" if read.rejects_path else "")
        )
    else:
        frame = _store_events(ws, settings)
    cfg = settings.search.training
    found = judgements_from_events(
        frame,
        catalogue,
        attribution_minutes=cfg.attribution_minutes,
        click_min_sessions=cfg.click_min_sessions,
    )
    item_pairs = co_interaction_pairs(frame, catalogue, cfg.co_interaction_pairs)
    attribution = found.report
    summary["events"] = {**asdict(attribution), "skipped": dict(attribution.skipped)}
    skipped = sum(attribution.skipped.values())
    log(
        f"judgements from events: {attribution.queries} queries, {attribution.judgements} (query, item) pairs "
        f"from {attribution.searches} searches and {attribution.attributed} of {attribution.actions} "
        f"clicks/add-to-carts/purchases within {cfg.attribution_minutes:g} min of one"
        + (f"; {skipped} rows skipped ({dict(attribution.skipped)})" if skipped else "")
    )
    file_queries, file_qrels = merge_judgements(file_queries, file_qrels, found.queries, found.qrels)
    summary["co_interaction_pairs"] = len(item_pairs)
    summary.update(_positives(file_queries, file_qrels))
    summary["from_events"] = summary["pairs"] - summary["files"]["pairs"]  # the pairs no judgement file graded
    return file_queries, file_qrels, item_pairs, summary


def _positives(queries: dict[str, str], qrels: Qrels) -> dict[str, int]:
    """Queries with a positive grade, and their (query, item) pairs with one: what training can learn from."""
    grades = [[g for g in qrels.get(q, {}).values() if g > 0] for q in queries]
    return {"queries": sum(1 for g in grades if g), "pairs": sum(len(g) for g in grades)}


def train_search(
    ws: Workspace,
    queries: Path | None = None,
    qrels: Path | None = None,
    log: Callable[[str], None] = print,
    *,
    events: Path | None = None,
    events_mapping: ColumnMapping | None = None,
) -> dict[str, object]:
    """Train the learned search stages (fine-tuned bi-encoder, cross-encoder, rankers) from graded judgements
    (files as for `eval search`) and from searches followed by clicks, add-to-carts and purchases (see
    `_search_judgements`) over the served build's catalogue; replaces `trained_search_dir` atomically."""
    current = served_artifacts(ws)
    settings = ws.settings
    catalog = CatalogSnapshot.load(current)
    ids = catalog.frame["item_id"].astype(str).tolist()
    judged_queries, judged, item_pairs, sources = _search_judgements(
        ws, settings, ids, queries, qrels, events, events_mapping, log
    )
    titles = [catalog.title(p) for p in range(len(ids))]
    texts = item_texts(current, catalog)
    encoder = make_encoder(ws, settings)
    searcher = SearchService.load(current / SEARCH_DIR, catalog, encoder, settings.search, ws.root).searcher
    trainer = SearchTrainer(
        searcher,
        ids,
        titles,
        texts,
        settings.search.training,
        base_model=resolve_model(settings.encoder.model),
        make_tuned_encoder=lambda folder: make_encoder(ws, settings, str(folder)),
        log=log,
    )
    try:
        with atomic_path(trained_search_dir(ws)) as tmp:
            tmp.mkdir()
            learned, report = trainer.train(judged_queries, judged, tmp, item_pairs)
            if learned is None and serves_learned(trained_search_dir(ws)):
                # leaving the block by an error keeps the earlier folder: a run with too little data loses nothing
                raise BuildError(
                    f"only {report.train_queries} judged queries with a relevant item (at least {MIN_TRAIN_QUERIES} "
                    "are needed to train and validate): the learned search trained earlier stays in use"
                )
    finally:
        encoder.cache.close()
    return {**asdict(report), "judgements": sources}
