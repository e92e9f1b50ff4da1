"""Contrastive fine-tuning of the bi-encoder on the shop's own (query, relevant item) pairs.

Pretrained MiniLM knows English, not this catalogue's vocabulary of model numbers and trade names; a few
thousand judged pairs with in-batch and hard negatives (MultipleNegativesRankingLoss) teach it. Training keeps
the epoch with the best validation score and stops once it no longer improves.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import torch

from shopfusion.workspace import atomic_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

B = TypeVar("B")
Precision = Literal["auto", "bfloat16", "float32"]


def native_bfloat16() -> bool:
    """True where the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX): there it is 2–3× faster than
    float32 for these models; elsewhere it is emulated and slower."""
    import torch.cpu

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def uses_bfloat16(precision: Precision) -> bool:
    return precision == "bfloat16" or (precision == "auto" and native_bfloat16())


@contextlib.contextmanager
def autocast(precision: Precision) -> Iterator[None]:
    """Matrix products in bfloat16 (weights stay float32) when `precision` asks for it or, for "auto", where the
    CPU has it natively; otherwise unchanged float32."""
    if uses_bfloat16(precision):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield
    else:
        yield


@dataclass(frozen=True)
class Triple:
    """A query, an item text judged relevant to it, and a hard negative (a near miss of the lexical retriever)."""

    query: str
    positive: str
    negative: str


@dataclass
class FineTuneReport:
    """What a training run did: validation score before training and after each epoch, the epoch kept."""

    validation: list[float] = field(default_factory=list)
    best_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0
    stopped_by_time: bool = False

    @property
    def best(self) -> float:
        return self.validation[self.best_epoch] if self.validation else 0.0


def batches_without_duplicates(triples: Sequence[Triple], size: int, rng: random.Random) -> list[list[Triple]]:
    """Shuffled batches in which no query or positive text repeats: a repeat would be scored as its own
    in-batch negative."""
    pending = list(triples)
    rng.shuffle(pending)
    batches: list[list[Triple]] = []
    while pending:
        batch: list[Triple] = []
        seen: set[str] = set()
        rest: list[Triple] = []
        for triple in pending:
            if len(batch) < size and triple.query not in seen and triple.positive not in seen:
                batch.append(triple)
                seen.update((triple.query, triple.positive))
            else:
                rest.append(triple)
        batches.append(batch)
        pending = rest
    return batches


def train_with_early_stopping(
    model: torch.nn.Module,
    epoch_batches: Callable[[], list[B]],
    batch_loss: Callable[[B], torch.Tensor],
    validate: Callable[[], float],
    *,
    epochs: int,
    lr: float,
    max_seconds: float,
    precision: Precision = "auto",
    param_groups: Sequence[dict[str, Any]] | None = None,
) -> FineTuneReport:
    """AdamW with linear warm-up and decay; validates before training and after every epoch, stops at the first
    epoch that does not improve (or when out of time) and leaves the model at its best validated state.
    `param_groups`: parameters with their own learning rates (e.g. a new head), instead of one rate for all."""
    from transformers import get_linear_schedule_with_warmup

    def validated() -> float:
        with autocast(precision):  # as the model will be used
            return validate()

    report = FineTuneReport(validation=[validated()])
    first = epoch_batches()
    if not first or epochs == 0:
        return report
    optimizer = torch.optim.AdamW(list(param_groups) if param_groups else model.parameters(), lr=lr)
    total = epochs * len(first)
    schedule = get_linear_schedule_with_warmup(optimizer, max(1, total // 10), total)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    started = time.perf_counter()
    batches = first
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in batches:
            with autocast(precision):
                loss = batch_loss(batch)
            loss.float().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            report.steps += 1
            if time.perf_counter() - started > max_seconds:
                report.stopped_by_time = True
                break
        model.eval()
        report.validation.append(validated())
        if report.validation[-1] > report.best:
            report.best_epoch = epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if report.best_epoch != epoch or report.stopped_by_time:
            break  # no better than the epoch before (patience 1), or out of time
        batches = epoch_batches()
    model.load_state_dict(best_state)
    report.seconds = time.perf_counter() - started
    return report


class BiEncoderTrainer:
    """Fine-tunes a sentence-transformers model in memory; `save` writes the best epoch's weights."""

    def __init__(
        self,
        model_path: Path,
        *,
        epochs: int = 2,
        batch_size: int = 32,
        lr: float = 3e-5,
        max_seconds: float = 1500.0,
        seed: int = 13,
        max_seq_length: int = 64,
        precision: Precision = "auto",
    ) -> None:
        from sentence_transformers import SentenceTransformer

        torch.manual_seed(seed)
        self.model: SentenceTransformer = SentenceTransformer(str(model_path), device="cpu")
        self.model.max_seq_length = max_seq_length
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.max_seconds, self.seed, self.precision = max_seconds, seed, precision

    def fit(self, triples: Sequence[Triple], validate: Callable[[SentenceTransformer], float]) -> FineTuneReport:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        rng = random.Random(self.seed)
        loss_fn = MultipleNegativesRankingLoss(self.model)

        def batch_loss(batch: list[Triple]) -> torch.Tensor:
            columns = ([t.query for t in batch], [t.positive for t in batch], [t.negative for t in batch])
            return loss_fn([self.model.preprocess(texts) for texts in columns], torch.zeros(len(batch)))

        return train_with_early_stopping(
            self.model,
            lambda: batches_without_duplicates(triples, self.batch_size, rng),
            batch_loss,
            lambda: validate(self.model),
            epochs=self.epochs,
            lr=self.lr,
            max_seconds=self.max_seconds,
            precision=self.precision,
        )

    def save(self, folder: Path) -> None:
        with atomic_path(folder) as tmp:
            self.model.save(str(tmp))
