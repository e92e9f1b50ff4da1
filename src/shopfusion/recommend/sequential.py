"""Text-aware sequential recommender: causal self-attention over a person's recent items (SASRec-style),
where each item's input is its learned id embedding plus a projection of its frozen text embedding plus
learned embeddings of its terms (TF-IDF weighted), so items with no history still have a meaningful
representation (the UniSRec / Recformer line of work) and items sharing a brand or product line share
what was learned about it."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from shopfusion.metrics import ndcg_of_hits
from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sources import History
from shopfusion.settings import SequentialSettings

SCORE_BATCH = 512  # sequences per forward pass when scoring many at once


@dataclass
class SequentialReport:
    epochs: int
    best_epoch: int
    validation_ndcg: list[float] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class ItemInputs:
    """What the network knows of each item besides its id: its text vector and its weighted terms."""

    text: np.ndarray  # items × text dimension
    terms: sp.csr_matrix | None = None  # items × terms (rows: TF-IDF weights), None: no term embeddings

    def __len__(self) -> int:
        return len(self.text)


class _Network(nn.Module):
    def __init__(self, items: ItemInputs, cfg: SequentialSettings) -> None:
        super().__init__()
        self.dim, self.temperature = cfg.dim, cfg.temperature
        self.text_weight, self.term_weight = cfg.text_weight, cfg.term_weight
        self._served: dict[str, torch.Tensor] = {}
        self.item_ids = nn.Embedding(len(items) + 1, cfg.dim, padding_idx=0)  # 0 pads, item i is i + 1
        nn.init.normal_(self.item_ids.weight, std=0.02)
        text = torch.as_tensor(items.text, dtype=torch.float32)
        self.register_buffer("text", torch.cat([torch.zeros(1, text.shape[1]), text]))
        self.text_proj = nn.Linear(text.shape[1], cfg.dim)
        self.positions = nn.Embedding(cfg.max_len, cfg.dim)
        layer = nn.TransformerEncoderLayer(
            cfg.dim, cfg.heads, dim_feedforward=cfg.dim * 2, dropout=cfg.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)
        terms = items.terms if cfg.term_weight > 0 else None
        self.terms: nn.EmbeddingBag | None = None
        if terms is not None and terms.shape[1] > 0:
            self.terms = nn.EmbeddingBag(terms.shape[1], cfg.dim, mode="sum")
            nn.init.normal_(self.terms.weight, std=0.02)
            bags = sp.vstack([sp.csr_matrix((1, terms.shape[1])), terms]).tocsr()  # row 0 (padding): an empty bag
            self.register_buffer("term_index", torch.as_tensor(bags.indices, dtype=torch.long))
            self.register_buffer("term_offsets", torch.as_tensor(bags.indptr[:-1], dtype=torch.long))
            self.register_buffer("term_weights", torch.as_tensor(bags.data, dtype=torch.float32))

    def _once_served(self, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Computed once while serving (eval mode, no gradients), every time while training: the item tables
        cost more than reading one sequence."""
        if self.training or torch.is_grad_enabled():
            self._served = {}
            return compute()
        if name not in self._served:
            self._served[name] = compute()
        return self._served[name]

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """New weights: the tables computed from the old ones are dropped."""
        self._served = {}
        return super().load_state_dict(state_dict, strict, assign)

    def item_table(self) -> torch.Tensor:
        return self._once_served("items", self._item_inputs)

    def _item_inputs(self) -> torch.Tensor:
        table = self.item_ids.weight + self.text_weight * self.text_proj(self.text)
        if self.terms is not None:
            bags = self.terms(self.term_index, self.term_offsets, per_sample_weights=self.term_weights)
            table = table + self.term_weight * bags
        return table

    def _output_table(self) -> torch.Tensor:
        table = self.item_table()[1:]
        if self.temperature > 0:
            table = nn.functional.normalize(table, dim=-1) / self.temperature
        return table

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """seqs: (batch, max_len) of item index + 1, left-padded with 0 → hidden states (batch, max_len, dim)."""
        table = self.item_table()
        x = table[seqs] * math.sqrt(self.dim) + self.positions.weight[None, : seqs.shape[1]]
        x = self.dropout(x) * (seqs > 0).unsqueeze(-1)
        causal = torch.triu(torch.ones(seqs.shape[1], seqs.shape[1], dtype=torch.bool), diagonal=1)
        # no key-padding mask: fully padded rows would turn into NaN; padded inputs are zeros instead
        hidden = self.encoder(x, mask=causal, is_causal=True)
        return self.norm(hidden)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Cosine over a temperature by default: with a plain dot product, popular items' long vectors win."""
        if self.temperature > 0:
            hidden = nn.functional.normalize(hidden, dim=-1)
        return hidden @ self._once_served("outputs", self._output_table).T

    def last_scores(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.logits(self.forward(seqs)[:, -1])


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _pad_left(seq: Sequence[int], length: int) -> list[int]:
    tail = [i + 1 for i in seq[-length:]]
    return [0] * (length - len(tail)) + tail


class SequentialRecommender:
    """fit(sequences, text vectors) / scores(sequence): item indices are positions in the catalogue."""

    def __init__(self, settings: SequentialSettings) -> None:
        self.params = settings.model_dump()  # plain values: what a saved model keeps of its settings
        self.networks_: list[_Network] = []
        self.report_: SequentialReport | None = None

    @property
    def settings(self) -> SequentialSettings:
        return SequentialSettings.model_validate(self.params)

    def fit(
        self,
        sequences: Sequence[Sequence[int]],
        item_text: np.ndarray,
        *,
        validation: Sequence[tuple[Sequence[int], int]] = (),
        epochs: int | None = None,
        item_terms: sp.csr_matrix | None = None,
        validate: bool = True,
    ) -> SequentialRecommender:
        """`sequences`: each person's items in time order; `item_text`: one text vector per item;
        `item_terms`: one row of term weights per item (learned term embeddings join the inputs).

        With `epochs`, train exactly that many. With `validation` pairs (history, next item), stop early on
        their nDCG@10 and keep the best epoch's weights. Otherwise each sequence's last item is first held
        out to choose the number of epochs, and the model is trained again on the full sequences for that
        many epochs, so the most recent interactions are learned from too; without `validate`, it trains
        for `max_epochs` on the full sequences."""
        started = time.perf_counter()
        max_epochs = self.settings.max_epochs
        items = ItemInputs(item_text, item_terms)
        own = [(s[:-1], s[-1]) for s in sequences if len(s) >= 3]
        if epochs is not None:
            self._train(sequences, items, (), epochs)
        elif validation:
            self._train(sequences, items, validation, max_epochs)
        elif own and validate:
            truncated = [s[:-1] if len(s) >= 3 else s for s in sequences]
            self._train(truncated, items, own, max_epochs)
            assert self.report_ is not None
            chosen, history = self.report_.best_epoch, self.report_.validation_ndcg
            self._train(sequences, items, (), chosen)
            self.report_.validation_ndcg, self.report_.best_epoch = history, chosen
        else:
            self._train(sequences, items, (), max_epochs)
        assert self.report_ is not None
        self.report_.seconds = round(time.perf_counter() - started, 1)
        return self

    def _train(
        self,
        sequences: Sequence[Sequence[int]],
        items: ItemInputs,
        validation: Sequence[tuple[Sequence[int], int]],
        max_epochs: int,
    ) -> None:
        """The first network stops early on `validation`; the others train for as many epochs as it chose."""
        cfg = self.settings
        with _torch_threads(cfg.threads):
            first, report = self._epochs(sequences, items, validation, max_epochs, cfg.seed)
            others = [
                self._epochs(sequences, items, (), report.best_epoch, cfg.seed + m)[0] for m in range(1, cfg.models)
            ]
        self.networks_, self.report_ = [first, *others], report

    def _epochs(
        self,
        sequences: Sequence[Sequence[int]],
        items: ItemInputs,
        validation: Sequence[tuple[Sequence[int], int]],
        max_epochs: int,
        seed: int,
    ) -> tuple[_Network, SequentialReport]:
        cfg = self.settings
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        network = _Network(items, cfg)
        optimiser = torch.optim.AdamW(network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        # every position predicts the next item: inputs are seq[:-1], targets seq[1:]
        usable = [s for s in sequences if len(s) >= 2]
        inputs = torch.tensor([_pad_left(s[:-1], cfg.max_len) for s in usable], dtype=torch.long)
        targets = torch.tensor([_pad_left(s[1:], cfg.max_len) for s in usable], dtype=torch.long) - 1  # -1 = padding
        if not usable:  # no history of two items yet (a new shop): the untrained network, text inputs only
            max_epochs = 0
        loss_fn = nn.CrossEntropyLoss()
        report = SequentialReport(epochs=0, best_epoch=0)
        best_state, best, waited, started = copy.deepcopy(network.state_dict()), -1.0, 0, time.perf_counter()
        for epoch in range(1, max_epochs + 1):
            network.train()
            for batch in np.array_split(rng.permutation(len(usable)), max(1, len(usable) // cfg.batch_size)):
                wanted = targets[batch] >= 0  # most positions of short histories are padding: skip them
                hidden = network(inputs[batch])[wanted]
                loss = loss_fn(network.logits(hidden), targets[batch][wanted])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            report.epochs = epoch
            if validation:
                self.networks_ = [network]
                score = self.evaluate(validation, k=10)
                report.validation_ndcg.append(round(score, 5))
                if score > best:
                    best, best_state, report.best_epoch, waited = score, copy.deepcopy(network.state_dict()), epoch, 0
                else:
                    waited += 1
                if waited >= cfg.patience:
                    break
            if time.perf_counter() - started > cfg.max_seconds:
                break
        if validation:
            network.load_state_dict(best_state)
        else:
            report.best_epoch = report.epochs
        network.eval()
        return network, report

    @torch.no_grad()
    def scores(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Next-item scores over the whole catalogue, one row per sequence: the logits of one network, or the log
        of several networks' mean probabilities."""
        if not self.networks_:
            raise RuntimeError("fit the model first")
        max_len, threads = self.params["max_len"], self.params["threads"]
        seqs = torch.tensor([_pad_left(s, max_len) for s in sequences], dtype=torch.long)
        seqs = seqs.reshape(len(sequences), max_len)
        with _torch_threads(threads):
            for network in self.networks_:
                network.eval()
            if len(self.networks_) == 1:
                return self.networks_[0].last_scores(seqs).numpy()
            probabilities = torch.stack([torch.softmax(n.last_scores(seqs), dim=1) for n in self.networks_]).mean(0)
            return torch.log(probabilities.clamp_min(1e-30)).numpy()

    def evaluate(self, pairs: Sequence[tuple[Sequence[int], int]], k: int = 10, exclude_seen: bool = True) -> float:
        """Mean nDCG@k of the held-out next item (one relevant item each)."""
        ranks = []
        for start in range(0, len(pairs), SCORE_BATCH):
            chunk = pairs[start : start + SCORE_BATCH]
            scores = self.scores([h for h, _ in chunk])
            for row, (history, target) in zip(scores, chunk, strict=True):
                if exclude_seen:
                    row[[i for i in history if i != target]] = -np.inf
                ranks.append(int((row > row[target]).sum()))
        hits = (np.asarray(ranks, dtype=np.int64)[:, None] == np.arange(k)).astype(np.float64)
        return sum(ndcg_of_hits(hits, np.ones(len(ranks), dtype=np.int64), k).tolist()) / max(1, len(pairs))


class SequentialSource:
    """The sequential model as a candidate source: a known user's own time-ordered items, or a session's
    items in the order given; scores are next-item probabilities over the catalogue."""

    name = "sequential"

    def __init__(
        self,
        vectors: np.ndarray,
        settings: SequentialSettings,
        epochs: int | None = None,
        terms: sp.csr_matrix | None = None,
    ) -> None:
        self.vectors = vectors
        self.terms = terms
        self.model = SequentialRecommender(settings)
        self.epochs = epochs  # known from an earlier validated fit: train exactly this many
        self.sequences_: list[np.ndarray] = []

    def fit(self, data: Interactions, validation: Mapping[int, int] | None = None) -> Self:
        """`validation`: user row → the item that user picked next (after `data`), for early stopping."""
        self.sequences_ = data.sequences
        pairs = [(self.sequences_[u].tolist(), item) for u, item in (validation or {}).items()]
        self.model.fit(
            [s.tolist() for s in data.sequences],
            self.vectors,
            validation=pairs,
            epochs=self.epochs,
            item_terms=self.terms,
        )
        return self

    def _sequence(self, history: History) -> list[int]:
        if 0 <= history.user < len(self.sequences_):
            return self.sequences_[history.user].tolist()
        return history.items.tolist()

    def scores_many(self, histories: Sequence[History]) -> np.ndarray:
        """Next-item probabilities for many histories at once, through the network in batches."""
        out = np.zeros((len(histories), len(self.vectors)), dtype=np.float32)
        sequences = [self._sequence(h) for h in histories]
        rows = [r for r, s in enumerate(sequences) if s]
        for start in range(0, len(rows), SCORE_BATCH):
            chunk = rows[start : start + SCORE_BATCH]
            logits = self.model.scores([sequences[r] for r in chunk])
            probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
            out[chunk] = probabilities / probabilities.sum(axis=1, keepdims=True)
        return out

    def scores(self, history: History) -> np.ndarray:
        return self.scores_many([history])[0]

    def because(self, history: History, positions: np.ndarray) -> np.ndarray:
        """The most recent item: what the model continues from."""
        sequence = self._sequence(history)
        return np.full(len(positions), sequence[-1] if sequence else -1, dtype=np.int64)
