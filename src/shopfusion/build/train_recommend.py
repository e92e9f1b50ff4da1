"""`train recommend`: refit only the recommenders on the store's current events, as a new model version."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

import numpy as np

from shopfusion.build.artifacts import (
    RECOMMEND_DIR,
    VECTORS_FILE,
    new_version,
    read_manifest,
    served_artifacts,
    write_manifest,
)
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.catalog.store import EVENTS_WATERMARK, open_store
from shopfusion.recommend.service import RecommendService
from shopfusion.workspace import MANIFEST_FILE, Workspace, atomic_path


def train_recommend(ws: Workspace) -> dict[str, object]:
    """Refit the recommendation models (sources, sequential model, fusion weights, learned ranker) on the
    served build's catalogue and vectors and the store's current events, as a new model version (the
    search artifacts are carried over unchanged) that is switched to atomically."""
    started = time.perf_counter()
    current = served_artifacts(ws)
    settings = ws.settings
    store = open_store(ws.store_url(settings))
    try:
        watermark = store.watermark()
        events = store.events_frame(upto=watermark)
    finally:
        store.close()
    catalog = CatalogSnapshot.load(current)
    vectors = np.load(current / VECTORS_FILE)
    version = new_version()
    with atomic_path(ws.models_dir / version) as tmp:
        shutil.copytree(current, tmp, ignore=shutil.ignore_patterns(RECOMMEND_DIR, MANIFEST_FILE))
        recommender = RecommendService.fit(catalog, events, vectors, settings.recommend)
        recommender.save(tmp / RECOMMEND_DIR)
        manifest = {
            **read_manifest(current),
            "version": version,
            "built_at": datetime.now(UTC).isoformat(),
            "events": len(events),
            EVENTS_WATERMARK: watermark,  # items: still those of the build the catalogue comes from
            "users_with_history": len(recommender.interactions.user_ids),
            "recommend": recommender.training_summary(),
            "seconds": round(time.perf_counter() - started, 2),
        }
        write_manifest(tmp, manifest)
    ws.activate(version)
    ws.prune_versions(settings.model_versions_kept)
    return manifest
