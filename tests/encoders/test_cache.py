from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopfusion.encoders import CachedEncoder, EmbeddingCache, SentenceTransformerEncoder
from shopfusion.encoders.sentence import EncoderUnavailable, resolve_model
from tests.conftest import HashingEncoder


def test_rebuild_hits_the_cache(tmp_path: Path, hashing_encoder: HashingEncoder) -> None:
    texts = ["red shoes", "blue shoes", "red shoes"]
    cached = CachedEncoder(hashing_encoder, EmbeddingCache(tmp_path / "cache.sqlite"))
    first = cached.encode(texts)
    assert hashing_encoder.encoded == ["red shoes", "blue shoes"]  # duplicates encoded once
    again = CachedEncoder(hashing_encoder, EmbeddingCache(tmp_path / "cache.sqlite"))  # a new process, same cache
    second = again.encode([*texts, "green hat"])
    assert hashing_encoder.encoded == ["red shoes", "blue shoes", "green hat"]
    assert (again.hits, again.misses) == (3, 1)
    np.testing.assert_allclose(first, second[:3])


def test_cache_is_keyed_by_model(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    small, large = HashingEncoder(8), HashingEncoder(16)
    CachedEncoder(small, cache).encode(["x"])
    assert CachedEncoder(large, cache).encode(["x"]).shape == (1, 16)
    assert large.encoded == ["x"]


def test_unknown_model_fails_clearly() -> None:
    with pytest.raises(EncoderUnavailable, match="does not download"):
        resolve_model("some-org/some-model-on-a-hub")


@pytest.mark.slow
def test_packaged_minilm_encodes_offline(tmp_path: Path) -> None:
    encoder = SentenceTransformerEncoder("all-MiniLM-L6-v2")
    vectors = encoder.encode(["red running shoes", "crimson jogging sneakers", "porcelain teapot"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # meaning, not spelling
    # a local model folder works the same way
    local = SentenceTransformerEncoder(str(resolve_model("all-MiniLM-L6-v2")))
    assert local.model_id != encoder.model_id or local.model_id.split("@")[1] == encoder.model_id.split("@")[1]
