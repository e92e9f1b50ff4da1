"""`build`: store → encode → index/fit, written as a new model version that is switched to atomically."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np

from shopfusion.build.artifacts import (
    RECOMMEND_DIR,
    SEARCH_DIR,
    TEXTS_FILE,
    VECTORS_FILE,
    BuildError,
    make_encoder,
    new_version,
    write_manifest,
)
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.catalog.store import EVENTS_WATERMARK, ITEMS_WATERMARK, open_store
from shopfusion.recommend.service import RecommendService
from shopfusion.search.indexes import build_search_artifacts
from shopfusion.workspace import Workspace, atomic_path


@dataclass
class BuildReport:
    items: int
    events: int
    users_with_history: int
    encoded: int
    from_cache: int
    vector_index: str
    seconds: float


def build(ws: Workspace, *, show_progress: bool = False) -> BuildReport:
    started = time.perf_counter()
    settings = ws.settings
    store = open_store(ws.store_url(settings))
    try:
        watermark = store.watermark()  # first: whatever is written while the build reads is served live
        items = store.items()
        events = store.events_frame(upto=watermark)
    finally:
        store.close()
    if not items:
        raise BuildError("the store has no items: run `shopfusion ingest items FILE` first")
    catalog = CatalogSnapshot.from_items(items)
    encoder = make_encoder(ws, settings)
    vectors = encoder.encode([i.text() for i in items], show_progress=show_progress)
    encoder.cache.close()
    version = new_version()
    with atomic_path(ws.models_dir / version) as tmp:
        tmp.mkdir()
        catalog.save(tmp)
        np.save(tmp / VECTORS_FILE, vectors)
        (tmp / TEXTS_FILE).write_text(json.dumps([i.text() for i in items]))
        vector_kind = build_search_artifacts(items, vectors, settings.search, tmp / SEARCH_DIR, events)
        recommender = RecommendService.fit(catalog, events, vectors, settings.recommend)
        recommender.save(tmp / RECOMMEND_DIR)
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
            ITEMS_WATERMARK: watermark,
            EVENTS_WATERMARK: watermark,
            **asdict(report),
            "recommend": recommender.training_summary(),
        }
        write_manifest(tmp, manifest)
    ws.activate(version)
    ws.prune_versions(settings.model_versions_kept)
    return report
