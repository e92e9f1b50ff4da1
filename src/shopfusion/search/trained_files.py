"""The trained search's folder (`train search` writes it, the engine reads it): every file name in it is named
here once, with the code that writes and reads the models."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shopfusion.encoders.base import TextEncoder
from shopfusion.index.vector import BuiltVectorIndex, build_vector_index, load_vector_index
from shopfusion.rank.cross_encoder import CrossEncoder
from shopfusion.rank.ltr import LambdaRankTrees
from shopfusion.search.hybrid import HybridSearcher
from shopfusion.search.learned import LearnedSearch
from shopfusion.search.ltr_features import FIRST_STAGE, SECOND_STAGE, Signals, Tuned
from shopfusion.settings import SearchTrainingSettings
from shopfusion.workspace import atomic_path, write_text_atomic

BI_ENCODER_DIR, CROSS_ENCODER_DIR, TUNED_INDEX_DIR = "bi_encoder", "cross_encoder", "bi_encoder_index"
FIRST_RANKER, SECOND_RANKER, PRIOR_FILE, REPORT_FILE = (
    "ranker_first.txt",
    "ranker_second.txt",
    "prior.json",
    "report.json",
)
FINGERPRINT_FILE = "catalogue.sha1"


def cross_encoder_options(settings: SearchTrainingSettings) -> dict[str, Any]:
    """How the cross-encoder reads and computes, the same in training and serving."""
    return {
        "max_length": settings.cross_encoder_max_length,
        "precision": settings.precision,
        "quantize": settings.cross_encoder_int8,
    }


def bi_encoder_dir(folder: Path) -> Path:
    """Where training saves the fine-tuned bi-encoder (kept only where it beat the pretrained one)."""
    return folder / BI_ENCODER_DIR


def fine_tuned_bi_encoder(folder: Path) -> Path | None:
    """The fine-tuned bi-encoder's folder, None when training kept none."""
    path = bi_encoder_dir(folder)
    return path if path.exists() else None


def write_report(folder: Path, report: Mapping[str, object]) -> None:
    write_text_atomic(folder / REPORT_FILE, json.dumps(report, indent=2))


def read_report(folder: Path) -> dict[str, Any] | None:
    """What the last training in `folder` reported, None when none ran there."""
    path = folder / REPORT_FILE
    return dict(json.loads(path.read_text())) if path.exists() else None


def serves_learned(folder: Path) -> bool:
    """Whether `folder` holds a trained search that beat the untrained blend on held-out queries (so it serves)."""
    report = read_report(folder)
    return report is not None and bool(report.get("used"))


def tuned_index(folder: Path, texts: Sequence[str], encoder: TextEncoder, exact_max_items: int) -> BuiltVectorIndex:
    """The catalogue's index from the fine-tuned bi-encoder `encoder`. It is kept in `folder` with a fingerprint
    of the model and texts it holds, so engines over an unchanged catalogue load it instead of re-encoding and
    rebuilding it (an HNSW build over 50k items takes about a minute)."""
    digest = hashlib.sha1(encoder.model_id.encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    saved, fingerprint = folder / TUNED_INDEX_DIR, digest.hexdigest()
    if (saved / FINGERPRINT_FILE).exists() and (saved / FINGERPRINT_FILE).read_text() == fingerprint:
        return load_vector_index(saved)
    index = build_vector_index(encoder.encode(texts), exact_max_items)
    try:
        with atomic_path(saved) as tmp:
            index.save(tmp)
            (tmp / FINGERPRINT_FILE).write_text(fingerprint)
    except OSError:
        pass  # a read-only workspace: the index is rebuilt at every load
    return index


def save_learned(learned: LearnedSearch, folder: Path, item_ids: Sequence[str]) -> None:
    """Rankers, the cross-encoder where its stage is used, and the item prior by item id (the bi-encoder is
    saved where it was trained: the catalogue is re-encoded from that folder)."""
    write_text_atomic(folder / FIRST_RANKER, learned.first.to_string())
    if learned.second is not None and learned.cross is not None:
        write_text_atomic(folder / SECOND_RANKER, learned.second.to_string())
        learned.cross.save(folder / CROSS_ENCODER_DIR)
    prior = {item_id: float(v) for item_id, v in zip(item_ids, learned.signals.prior.tolist(), strict=True) if v}
    write_text_atomic(folder / PRIOR_FILE, json.dumps(prior))


def load_learned(
    folder: Path,
    searcher: HybridSearcher,
    item_ids: Sequence[str],
    titles: Sequence[str],
    texts: Sequence[str],
    tuned: Tuned | None,
    settings: SearchTrainingSettings,
) -> LearnedSearch | None:
    """The trained pipeline in `folder` over this catalogue, or None when there is none (or when training found it
    no better than the untrained blend on held-out queries)."""
    if not serves_learned(folder):
        return None
    known = json.loads((folder / PRIOR_FILE).read_text())
    prior = np.array([known.get(item_id, 0.0) for item_id in item_ids], dtype=np.float32)
    signals = Signals(searcher, titles, texts, prior, tuned, settings.ltr_depth)
    first = LambdaRankTrees.from_string((folder / FIRST_RANKER).read_text(), FIRST_STAGE)
    cross_dir, second_file = folder / CROSS_ENCODER_DIR, folder / SECOND_RANKER
    cross = CrossEncoder.load(cross_dir, **cross_encoder_options(settings)) if cross_dir.exists() else None
    second = LambdaRankTrees.from_string(second_file.read_text(), SECOND_STAGE) if second_file.exists() else None
    return LearnedSearch(signals, first, cross, second, settings.rerank_depth)
