"""Cross-encoder re-ranker: reads query and item text together, so it sees which words match which.

Initialised from pretrained transformer weights on disk (by default the MiniLM packaged with the encoder; its
classification head starts untrained) and fine-tuned on graded judgements as soft binary targets. It is the
costliest stage per query, so inputs are short (query + the start of the item text, `max_length` tokens) and
inference runs on a bfloat16 copy where the CPU has bfloat16 natively, else on a dynamically int8-quantised one.
"""

from __future__ import annotations

import copy
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

from shopfusion.encoders.finetune import FineTuneReport, Precision, train_with_early_stopping, uses_bfloat16
from shopfusion.workspace import atomic_path


@dataclass(frozen=True)
class Judged:
    """A (query, item text) pair with its target in [0, 1]: the grade over the top grade, 0 for a negative."""

    query: str
    text: str
    target: float


class CrossEncoder:
    def __init__(
        self,
        model_path: Path,
        *,
        max_length: int = 48,
        batch_size: int = 64,
        precision: Precision = "auto",
        quantize: bool = True,
    ) -> None:
        """`quantize`: where bfloat16 is not used, score with an int8 copy of the linear layers (≈2× faster)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # 'newly initialised head' is expected for pretrained encoder weights
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_path), num_labels=1)
        self.model.eval()
        self.max_length, self.batch_size, self.precision, self.quantize = max_length, batch_size, precision, quantize
        self._fast: torch.nn.Module | None = None

    @classmethod
    def load(cls, folder: Path, **options: Any) -> Self:
        return cls(folder, **options)

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

    def _scorer(self) -> torch.nn.Module:
        """The model that scores: a bfloat16 copy (no per-call casts of the weights, as autocast would make), an
        int8-quantised copy, or the float32 model itself. Copies are remade after the weights change."""
        if self._fast is None:
            if uses_bfloat16(self.precision):
                self._fast = copy.deepcopy(self.model).to(torch.bfloat16).eval()
            elif self.quantize:
                with warnings.catch_warnings():  # torch points eager quantisation users to torchao, not installed
                    warnings.simplefilter("ignore")
                    self._fast = torch.ao.quantization.quantize_dynamic(
                        self.model, {torch.nn.Linear}, dtype=torch.qint8
                    )
            else:
                self._fast = self.model
        return self._fast

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Relevance logits of `texts` for one query (higher is more relevant)."""
        return self.score_pairs([query] * len(texts), texts)

    def score_pairs(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Pairs are batched by length, so short pairs are not padded to the longest of the whole call."""
        out = np.zeros(len(texts), dtype=np.float32)
        order = np.argsort([len(q) + len(t) for q, t in zip(queries, texts, strict=True)], kind="stable")
        model = self._scorer()
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                inputs = self._inputs([queries[i] for i in rows], [texts[i] for i in rows])
                out[rows] = model(**inputs).logits[:, 0].float().numpy()
        return out

    def fit(
        self,
        pairs: Sequence[Judged],
        validate: Callable[[CrossEncoder], float],
        *,
        epochs: int = 1,
        batch_size: int = 32,
        lr: float = 5e-5,
        head_lr: float = 1e-3,
        max_seconds: float = 1500.0,
        seed: int = 13,
    ) -> FineTuneReport:
        """Binary cross-entropy against the soft targets; keeps the best validated epoch. The new head learns at
        `head_lr`, faster than the pretrained layers at `lr`: with few steps it would otherwise stay near random."""
        torch.manual_seed(seed)
        rng = random.Random(seed)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        pretrained = (f"{self.model.base_model_prefix}.embeddings", f"{self.model.base_model_prefix}.encoder")
        named = list(self.model.named_parameters())
        groups = [
            {"params": [p for n, p in named if n.startswith(pretrained)], "lr": lr},
            {"params": [p for n, p in named if not n.startswith(pretrained)], "lr": head_lr},
        ]

        def epoch_batches() -> list[list[Judged]]:
            order = list(pairs)
            rng.shuffle(order)
            return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

        def batch_loss(batch: list[Judged]) -> torch.Tensor:
            logits = self.model(**self._inputs([p.query for p in batch], [p.text for p in batch])).logits[:, 0]
            return loss_fn(logits.float(), torch.tensor([p.target for p in batch], dtype=torch.float32))

        def validated() -> float:
            self._fast = None  # the weights changed since the last copy
            return validate(self)

        report = train_with_early_stopping(
            self.model,
            epoch_batches,
            batch_loss,
            validated,
            epochs=epochs,
            lr=lr,
            max_seconds=max_seconds,
            precision=self.precision,
            param_groups=groups,
        )
        self._fast = None
        return report

    def save(self, folder: Path) -> None:
        with atomic_path(folder) as tmp:
            self.model.save_pretrained(str(tmp))
            self.tokenizer.save_pretrained(str(tmp))
