"""Cross-encoder re-ranker: reads query and item text together, so it sees which words match which.

Initialised from pretrained transformer weights on disk (by default the MiniLM packaged with the encoder; its
classification head starts untrained) and fine-tuned on graded judgements as soft binary targets.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import torch

from shopfusion.encoders.finetune import TrainReport, train_with_early_stopping
from shopfusion.workspace import atomic_path


@dataclass(frozen=True)
class Judged:
    """A (query, item text) pair with its target in [0, 1]: the grade over the top grade, 0 for a negative."""

    query: str
    text: str
    target: float


class CrossEncoder:
    def __init__(self, model_path: Path, *, max_length: int = 64, batch_size: int = 64) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # 'newly initialised head' is expected for pretrained encoder weights
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_path), num_labels=1)
        self.model.eval()
        self.max_length, self.batch_size = max_length, batch_size

    @classmethod
    def load(cls, folder: Path) -> Self:
        return cls(folder)

    def _inputs(self, queries: Sequence[str], texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return dict(
            self.tokenizer(
                list(queries),
                list(texts),
                padding=True,
                truncation="only_second",
                max_length=self.max_length,
                return_tensors="pt",
            )
        )

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Relevance logits of `texts` for one query (higher is more relevant)."""
        return self.score_pairs([query] * len(texts), texts)

    def score_pairs(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        out = np.zeros(len(texts), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                end = start + self.batch_size
                logits = self.model(**self._inputs(queries[start:end], texts[start:end])).logits[:, 0]
                out[start:end] = logits.float().numpy()
        return out

    def fit(
        self,
        pairs: Sequence[Judged],
        validate: Callable[[CrossEncoder], float],
        *,
        epochs: int = 1,
        batch_size: int = 32,
        lr: float = 4e-5,
        max_seconds: float = 1500.0,
        seed: int = 13,
    ) -> TrainReport:
        """Binary cross-entropy against the soft targets; keeps the best validated epoch."""
        torch.manual_seed(seed)
        rng = random.Random(seed)
        loss_fn = torch.nn.BCEWithLogitsLoss()

        def epoch_batches() -> list[list[Judged]]:
            order = list(pairs)
            rng.shuffle(order)
            return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

        def batch_loss(batch: list[Judged]) -> torch.Tensor:
            logits = self.model(**self._inputs([p.query for p in batch], [p.text for p in batch])).logits[:, 0]
            return loss_fn(logits, torch.tensor([p.target for p in batch], dtype=torch.float32))

        return train_with_early_stopping(
            self.model, epoch_batches, batch_loss, lambda: validate(self), epochs=epochs, lr=lr, max_seconds=max_seconds
        )

    def save(self, folder: Path) -> None:
        with atomic_path(folder) as tmp:
            self.model.save_pretrained(str(tmp))
            self.tokenizer.save_pretrained(str(tmp))
