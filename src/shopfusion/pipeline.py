"""`build`: store → encode → index/train, written as a new model version that is switched to atomically."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

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


def train_search(ws: Workspace, queries: Path, qrels: Path, log: Callable[[str], None] = print) -> dict[str, object]:
    """Train the learned search stages (fine-tuned bi-encoder, cross-encoder, rankers) from graded judgements
    over the served build's catalogue; replaces `trained_search_dir` atomically. Files as for `eval search`."""
    from shopfusion.evaluate.search_eval import load_qrels, load_queries
    from shopfusion.search.learned import SearchTrainer
    from shopfusion.search.service import SearchService

    current = ws.artifacts_dir
    if not (current / "manifest.json").exists():
        raise BuildError(f"{ws.root} has not been built yet: run `shopfusion build` first")
    settings = ws.settings
    catalog = CatalogSnapshot.load(current)
    ids = catalog.frame["item_id"].astype(str).tolist()
    titles = [catalog.title(p) for p in range(len(ids))]
    texts = item_texts(current, catalog)
    encoder = make_encoder(ws, settings)
    searcher = SearchService.load(current / "search", catalog, encoder, settings.search, ws.root).searcher
    trainer = SearchTrainer(
        searcher,
        ids,
        titles,
        texts,
        settings.search_training,
        base_model=resolve_model(settings.encoder.model),
        make_tuned_encoder=lambda folder: make_encoder(ws, settings, str(folder)),
        log=log,
    )
    with atomic_path(trained_search_dir(ws)) as tmp:
        tmp.mkdir()
        _, report = trainer.train(load_queries(queries), load_qrels(qrels), tmp)
    encoder.cache.close()
    return asdict(report)
