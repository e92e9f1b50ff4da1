"""What a model version holds and where the learned search lives, named once for everything that writes or reads
them (build, training, the engine, evaluation); and the encoder every stage encodes with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.encoders import CachedEncoder, EmbeddingCache, SentenceTransformerEncoder
from shopfusion.settings import Settings
from shopfusion.workspace import MANIFEST_FILE, Workspace

VECTORS_FILE = "item_vectors.npy"
TEXTS_FILE = "item_texts.json"  # what the encoder read per item, in catalogue order
SEARCH_DIR = "search"  # the search indexes of a version
RECOMMEND_DIR = "recommend"  # the fitted recommenders of a version


class BuildError(RuntimeError):
    pass


def make_encoder(ws: Workspace, settings: Settings, model: str | None = None) -> CachedEncoder:
    """The configured encoder (or `model`, e.g. a fine-tuned folder) behind the workspace's embedding cache."""
    enc = settings.encoder
    base = SentenceTransformerEncoder(
        model or enc.model, batch_size=enc.batch_size, device=enc.device, max_seq_length=enc.max_seq_length
    )
    return CachedEncoder(base, EmbeddingCache(ws.embedding_cache_path))


def new_version() -> str:
    """A version name that sorts by creation time (versions are kept and pruned in that order)."""
    return datetime.now(UTC).strftime("v%Y%m%dT%H%M%S%f")


def served_artifacts(ws: Workspace) -> Path:
    """The served version's folder; retraining one part needs a build to start from."""
    current = ws.artifacts_dir
    if not (current / MANIFEST_FILE).exists():
        raise BuildError(f"{ws.root} has not been built yet: run `shopfusion build` first")
    return current


def read_manifest(artifacts: Path) -> dict[str, object]:
    return dict(json.loads((artifacts / MANIFEST_FILE).read_text()))


def write_manifest(artifacts: Path, manifest: dict[str, Any]) -> None:
    (artifacts / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


def item_texts(artifacts: Path, catalog: CatalogSnapshot) -> list[str]:
    """The texts a build encoded, in catalogue order (builds without this file: the titles)."""
    path = artifacts / TEXTS_FILE
    if path.exists():
        return [str(t) for t in json.loads(path.read_text())]
    return [catalog.title(p) for p in range(len(catalog))]


def trained_search_dir(ws: Workspace) -> Path:
    """Learned search models live beside the builds, not in one: every later build and rollback uses them."""
    return ws.root / "trained" / "search"
