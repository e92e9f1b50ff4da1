"""`build`: store → encode → index/train, written as one artifacts folder that replaces the old one atomically."""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from shopfusion.catalog.schema import Item
from shopfusion.catalog.store import open_store
from shopfusion.encoders import CachedEncoder, EmbeddingCache, SentenceTransformerEncoder
from shopfusion.index.lexical import Bm25Index, weighted_tokens
from shopfusion.index.vector import build_vector_index
from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sources import ItemKNN, Popularity, RepeatPurchase
from shopfusion.settings import Settings
from shopfusion.workspace import Workspace, atomic_path


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


def make_encoder(ws: Workspace, settings: Settings) -> CachedEncoder:
    enc = settings.encoder
    base = SentenceTransformerEncoder(
        enc.model, batch_size=enc.batch_size, device=enc.device, max_seq_length=enc.max_seq_length
    )
    return CachedEncoder(base, EmbeddingCache(ws.embedding_cache_path))


def catalog_frame(items: list[Item]) -> pd.DataFrame:
    """The serving snapshot of the catalogue: what filters, facets and result cards need."""
    return pd.DataFrame(
        {
            "item_id": [i.item_id for i in items],
            "title": [i.title for i in items],
            "brand": [i.brand for i in items],
            "category_path": [" > ".join(i.category) for i in items],
            "price": [i.price for i in items],
            "currency": [i.currency for i in items],
            "image": [i.image for i in items],
            "available": [i.available for i in items],
            "attributes": [json.dumps(i.attributes) for i in items],
            "created_at": [i.created_at for i in items],
        }
    )


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
    encoder = make_encoder(ws, settings)
    vectors = encoder.encode([i.text() for i in items], show_progress=show_progress)
    lexical = Bm25Index.build([weighted_tokens(i, settings.search.field_weights) for i in items])
    vector_index = build_vector_index(vectors, settings.search.exact_vector_max_items)
    item_ids = np.array([i.item_id for i in items], dtype=object)
    interactions = Interactions.from_events(events, item_ids)
    sources = {
        "popularity": Popularity(settings.recommend.popularity_half_life_days).fit(interactions),
        "repeat": RepeatPurchase().fit(interactions),
        "item_knn": ItemKNN().fit(interactions),
    }
    report = BuildReport(
        items=len(items),
        events=len(events),
        users_with_history=len(interactions.user_ids),
        encoded=encoder.misses,
        from_cache=encoder.hits,
        vector_index=type(vector_index).__name__,
        seconds=0.0,
    )
    with atomic_path(ws.artifacts_dir) as tmp:
        tmp.mkdir()
        catalog_frame(items).to_parquet(tmp / "catalog.parquet")
        np.save(tmp / "item_vectors.npy", vectors)
        lexical.save(tmp / "lexical")
        vector_index.save(tmp / "vectors")
        with (tmp / "recommend.pkl").open("wb") as handle:
            pickle.dump({"interactions": interactions, "sources": sources}, handle)
        report.seconds = round(time.perf_counter() - started, 2)
        manifest = {"built_at": datetime.now(UTC).isoformat(), "encoder": encoder.model_id, **asdict(report)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    encoder.cache.close()
    return report


def read_manifest(artifacts: Path) -> dict[str, object]:
    return dict(json.loads((artifacts / "manifest.json").read_text()))
