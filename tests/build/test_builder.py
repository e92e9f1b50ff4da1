"""`build` and `train recommend` on generated data with a hashing encoder: what a model version holds, the atomic
switch to it, and what retraining one part carries over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shopfusion.build import builder
from shopfusion.build.artifacts import (
    RECOMMEND_DIR,
    SEARCH_DIR,
    TEXTS_FILE,
    VECTORS_FILE,
    BuildError,
    item_texts,
    read_manifest,
)
from shopfusion.build.builder import build
from shopfusion.build.train_recommend import train_recommend
from shopfusion.catalog.ingest import ColumnMapping, ingest_file
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.catalog.store import open_store
from shopfusion.encoders import CachedEncoder, EmbeddingCache
from shopfusion.settings import Settings
from shopfusion.workspace import MANIFEST_FILE, Workspace
from tests.conftest import HashingEncoder


@pytest.fixture
def ws(
    tmp_path: Path, items_csv: Path, transactions_csv: Path, retail_mapping: Path, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    """A workspace with the generated items and transactions in its store, built with a hashing encoder."""

    def hashing(ws: Workspace, settings: Settings, model: str | None = None) -> CachedEncoder:
        return CachedEncoder(HashingEncoder(), EmbeddingCache(ws.embedding_cache_path))

    monkeypatch.setattr(builder, "make_encoder", hashing)
    workspace = Workspace.init(tmp_path / "ws")
    store = open_store(workspace.store_url())
    ingest_file(store, "items", items_csv)
    ingest_file(store, "events", transactions_csv, ColumnMapping.from_toml(retail_mapping))
    store.close()
    return workspace


def test_a_build_is_a_new_version_served_at_once(ws: Workspace) -> None:
    first = build(ws)
    assert (first.items, first.encoded, first.from_cache) == (10, 10, 0)
    version = ws.current_version
    assert version is not None and ws.artifacts_dir == ws.models_dir / version
    for name in (VECTORS_FILE, TEXTS_FILE, SEARCH_DIR, RECOMMEND_DIR, MANIFEST_FILE):
        assert (ws.artifacts_dir / name).exists(), name
    manifest = read_manifest(ws.artifacts_dir)
    assert manifest["version"] == version and manifest["items"] == 10 and manifest["encoder"] == "hashing-64"
    assert np.load(ws.artifacts_dir / VECTORS_FILE).shape == (10, 64)

    second = build(ws)
    assert (second.encoded, second.from_cache) == (0, 10)  # unchanged items cost nothing
    assert ws.current_version != version and ws.model_versions() == sorted([version, str(ws.current_version)])


def test_item_texts_are_what_the_build_encoded_else_the_titles(ws: Workspace) -> None:
    build(ws)
    catalog = CatalogSnapshot.load(ws.artifacts_dir)
    texts = item_texts(ws.artifacts_dir, catalog)
    assert texts == json.loads((ws.artifacts_dir / TEXTS_FILE).read_text()) and len(texts) == 10
    (ws.artifacts_dir / TEXTS_FILE).unlink()
    assert item_texts(ws.artifacts_dir, catalog) == [catalog.title(p) for p in range(len(catalog))]


def test_an_empty_store_is_not_built(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no items"):
        build(Workspace.init(tmp_path / "empty"))


def test_train_recommend_refits_only_the_recommenders(ws: Workspace) -> None:
    with pytest.raises(BuildError, match="not been built"):
        train_recommend(ws)
    build(ws)
    built = ws.current_version
    search_files = sorted(p.name for p in (ws.artifacts_dir / SEARCH_DIR).iterdir())
    manifest = train_recommend(ws)
    assert manifest["version"] == ws.current_version != built
    assert manifest["encoder"] == "hashing-64" and manifest["items"] == 10  # the build's record carries over
    assert read_manifest(ws.artifacts_dir) == manifest
    assert sorted(p.name for p in (ws.artifacts_dir / SEARCH_DIR).iterdir()) == search_files
    assert (ws.artifacts_dir / RECOMMEND_DIR).exists()
