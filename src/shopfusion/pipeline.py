"""`build`: store → encode → index/train, written as a new model version that is switched to atomically."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopfusion.catalog.ingest import ColumnMapping
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.catalog.store import open_store
from shopfusion.encoders import CachedEncoder, EmbeddingCache, SentenceTransformerEncoder, resolve_model
from shopfusion.recommend.service import RecommendService
from shopfusion.search.service import build_search_artifacts
from shopfusion.settings import Settings
from shopfusion.workspace import Workspace, atomic_path

VECTORS_FILE = "item_vectors.npy"
TEXTS_FILE = "item_texts.json"  # what the encoder read per item, in catalogue order


class BuildError(RuntimeError):
    pass


@dataclass
class BuildReport:
    items: int
    events: int
    users_with_history: int
    encoded: int
    from_cache: int
    vector_index: str
    seconds: float


def make_encoder(ws: Workspace, settings: Settings, model: str | None = None) -> CachedEncoder:
    """The configured encoder (or `model`, e.g. a fine-tuned folder) behind the workspace's embedding cache."""
    enc = settings.encoder
    base = SentenceTransformerEncoder(
        model or enc.model, batch_size=enc.batch_size, device=enc.device, max_seq_length=enc.max_seq_length
    )
    return CachedEncoder(base, EmbeddingCache(ws.embedding_cache_path))


def build(ws: Workspace, *, show_progress: bool = False) -> BuildReport:
    started = time.perf_counter()
    settings = ws.settings
    store = open_store(ws.store_url(settings))
    try:
        items = store.items()
        events = store.events_frame()
    finally:
        store.close()
    if not items:
        raise BuildError("the store has no items: run `shopfusion ingest items FILE` first")
    catalog = CatalogSnapshot.from_items(items)
    encoder = make_encoder(ws, settings)
    vectors = encoder.encode([i.text() for i in items], show_progress=show_progress)
    encoder.cache.close()
    version = datetime.now(UTC).strftime("v%Y%m%dT%H%M%S%f")
    with atomic_path(ws.models_dir / version) as tmp:
        tmp.mkdir()
        catalog.save(tmp)
        np.save(tmp / VECTORS_FILE, vectors)
        (tmp / TEXTS_FILE).write_text(json.dumps([i.text() for i in items]))
        vector_kind = build_search_artifacts(items, vectors, settings.search, tmp / "search", events)
        recommender = RecommendService.fit(catalog, events, vectors, settings.recommend)
        recommender.save(tmp / "recommend")
        report = BuildReport(
            items=len(items),
            events=len(events),
            users_with_history=len(recommender.interactions.user_ids),
            encoded=encoder.misses,
            from_cache=encoder.hits,
            vector_index=vector_kind,
            seconds=round(time.perf_counter() - started, 2),
        )
        manifest = {
            "version": version,
            "built_at": datetime.now(UTC).isoformat(),
            "encoder": encoder.model_id,
            **asdict(report),
            "recommend": recommender.training_summary(),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    ws.activate(version)
    ws.prune_versions(settings.model_versions_kept)
    return report


def item_texts(artifacts: Path, catalog: CatalogSnapshot) -> list[str]:
    """The texts a build encoded, in catalogue order (builds older than this file: the titles)."""
    path = artifacts / TEXTS_FILE
    if path.exists():
        return [str(t) for t in json.loads(path.read_text())]
    return [catalog.title(p) for p in range(len(catalog))]


def read_manifest(artifacts: Path) -> dict[str, object]:
    return dict(json.loads((artifacts / "manifest.json").read_text()))


def train_recommend(ws: Workspace) -> dict[str, object]:
    """Refit only the recommendation models (sources, sequential model, fusion weights, learned ranker) on the
    served build's catalogue and vectors and the store's current events, as a new model version (the
    search artifacts are carried over unchanged) that is switched to atomically."""
    started = time.perf_counter()
    current = ws.artifacts_dir
    if not (current / "manifest.json").exists():
        raise BuildError(f"{ws.root} has not been built yet: run `shopfusion build` first")
    settings = ws.settings
    store = open_store(ws.store_url(settings))
    try:
        events = store.events_frame()
    finally:
        store.close()
    catalog = CatalogSnapshot.load(current)
    vectors = np.load(current / VECTORS_FILE)
    version = datetime.now(UTC).strftime("v%Y%m%dT%H%M%S%f")
    with atomic_path(ws.models_dir / version) as tmp:
        shutil.copytree(current, tmp, ignore=shutil.ignore_patterns("recommend", "manifest.json"))
        recommender = RecommendService.fit(catalog, events, vectors, settings.recommend)
        recommender.save(tmp / "recommend")
        manifest = {
            **read_manifest(current),
            "version": version,
            "built_at": datetime.now(UTC).isoformat(),
            "events": len(events),
            "users_with_history": len(recommender.interactions.user_ids),
            "recommend": recommender.training_summary(),
            "seconds": round(time.perf_counter() - started, 2),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    ws.activate(version)
    ws.prune_versions(settings.model_versions_kept)
    return manifest


def trained_search_dir(ws: Workspace) -> Path:
    """Learned search models live beside the builds, not in one: every later build and rollback uses them."""
    return ws.root / "trained" / "search"


def _search_judgements(
    ws: Workspace,
    settings: Settings,
    catalogue: list[str],
    queries: Path | None,
    qrels: Path | None,
    events: Path | None,
    events_mapping: ColumnMapping | None,
    log: Callable[[str], None],
) -> tuple[dict[str, str], dict[str, dict[str, float]], list[tuple[str, str]], dict[str, Any]]:
    """Judged queries and grades from the judgement files and from behaviour events (file grades win), the
    co-interaction item pairs of those events, and a summary of where they came from. Events come from the
    `events` file (validated as `ingest events` does, rejects written to the workspace), else from the store:
    the shop's own searches and what followed them always count."""
    from shopfusion.catalog.ingest import read_events
    from shopfusion.catalog.schema import EventType
    from shopfusion.evaluate.search_eval import load_qrels, load_queries
    from shopfusion.search.judgements import co_interaction_pairs, judgements_from_events, merge_judgements

    if (queries is None) != (qrels is None):
        raise BuildError("judgement files go in pairs: give both queries and qrels, or neither")
    file_queries = load_queries(queries) if queries is not None else {}
    file_qrels = load_qrels(qrels) if qrels is not None else {}
    summary: dict[str, Any] = {"files": _positives(file_queries, file_qrels)}
    frame: pd.DataFrame | None = None
    if events is not None:
        frame, read = read_events(events, events_mapping, rejects_dir=ws.rejects_dir)
        summary["events_file"] = read.as_dict()
        log(
            f"events file {events}: {read.rows} rows, {read.loaded} valid, {read.rejected} rejected"
            + (f" (rejects with row numbers: {read.rejects_path})" if read.rejects_path else "")
        )
    else:
        store = open_store(ws.store_url(settings))
        try:
            kinds = (EventType.SEARCH, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE)
            frame = store.events_frame(kinds)
        finally:
            store.close()
    cfg = settings.search.training
    item_pairs: list[tuple[str, str]] = []
    if frame is not None:
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


def _positives(queries: dict[str, str], qrels: dict[str, dict[str, float]]) -> dict[str, int]:
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
    from shopfusion.search.learned import MIN_TRAIN_QUERIES, SearchTrainer, serves_learned
    from shopfusion.search.service import SearchService

    current = ws.artifacts_dir
    if not (current / "manifest.json").exists():
        raise BuildError(f"{ws.root} has not been built yet: run `shopfusion build` first")
    settings = ws.settings
    catalog = CatalogSnapshot.load(current)
    ids = catalog.frame["item_id"].astype(str).tolist()
    judged_queries, judged, item_pairs, sources = _search_judgements(
        ws, settings, ids, queries, qrels, events, events_mapping, log
    )
    titles = [catalog.title(p) for p in range(len(ids))]
    texts = item_texts(current, catalog)
    encoder = make_encoder(ws, settings)
    searcher = SearchService.load(current / "search", catalog, encoder, settings.search, ws.root).searcher
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
