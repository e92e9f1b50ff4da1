"""Choosing fusion weights from the training events only: hold out the most recent part of the events the
same way the task is evaluated (each user's last item, or the last stretch of time), fit every source on the
rest, and pick weights by coordinate ascent on nDCG of the held-out part."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shopfusion.metrics import ndcg_rows
from shopfusion.rank.fusion import FusionMethod, shares
from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.registry import fit_sources, sequential_epochs
from shopfusion.recommend.sources import CandidateSource, History, candidates_many
from shopfusion.settings import RecommendSettings

WEIGHT_GRID = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)  # the best single source starts at 1
ROUNDS = 3


def validation_split(
    events: pd.DataFrame, *, leave_one_out: bool, fraction: float
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """(events to fit on, user → held-out items in time order). Leave-one-out holds back each user's last
    event (users with at least two); otherwise the latest `fraction` of the events (by time, whole
    timestamps) is held back — a share of events, not of the time span, so a few stray late events (a test
    purchase, a clock set wrong) cannot make the held-out stretch empty of known people."""
    ordered = events.sort_values("timestamp", kind="stable")
    if ordered.empty:
        return ordered, {}
    if leave_one_out:
        last = ordered.groupby("user_id", sort=False).tail(1)
        counts = ordered.groupby("user_id")["item_id"].transform("size")
        held = last[counts.loc[last.index] > 1]
        fit_on = ordered.drop(index=held.index)
    else:
        cutoff = ordered["timestamp"].iloc[min(len(ordered) - 1, int(len(ordered) * (1 - fraction)))]
        fit_on, held = ordered[ordered["timestamp"] < cutoff], ordered[ordered["timestamp"] >= cutoff]
    targets = held.groupby("user_id", sort=False)["item_id"].agg(lambda s: list(dict.fromkeys(map(str, s))))
    return fit_on, {str(u): items for u, items in targets.items()}


@dataclass
class ValidationSet:
    """Sources fitted on the training events minus their held-out part, and a sample of the held-out
    people (in random order) with what they picked: what fusion weights and the ranker learn from."""

    data: Interactions
    sources: dict[str, CandidateSource]
    histories: list[History]
    targets: sp.csr_matrix  # people × items, 1 where held out
    sizes: np.ndarray  # held-out items per person, also those outside the catalogue
    leave_one_out: bool

    def exclusions(self) -> list[np.ndarray]:
        """Per person, the positions no method may return (their history when evaluating left-out items)."""
        return [h.items if self.leave_one_out else np.zeros(0, dtype=np.int64) for h in self.histories]


def validation_sets(
    events: pd.DataFrame,
    item_ids: np.ndarray,
    vectors: np.ndarray,
    settings: RecommendSettings,
    *,
    leave_one_out: bool,
    steps: int = 1,
    seed: int = 0,
    terms: sp.csr_matrix | None = None,
) -> list[ValidationSet]:
    """The held-out last step of `events` (each user's last item, or the last stretch of time), then up to
    `steps` - 1 earlier steps, each held out from what the later one was fitted on: more people-steps for
    the ranker to learn from. Only the first lets the sequential model stop early on its held-out items; the
    earlier ones train it for that many epochs, as the final fit does. Stops at a step with fewer than 10
    held-out people known before it."""
    out: list[ValidationSet] = []
    epochs = None
    for _ in range(steps):
        fit_on, held = validation_split(events, leave_one_out=leave_one_out, fraction=settings.validation_fraction)
        step = _validation_step(fit_on, held, item_ids, vectors, settings, leave_one_out, seed, epochs, terms)
        if step is None:
            break
        out.append(step)
        epochs = sequential_epochs(step.sources)
        events = fit_on
    return out


def _validation_step(
    fit_on: pd.DataFrame,
    held: dict[str, list[str]],
    item_ids: np.ndarray,
    vectors: np.ndarray,
    settings: RecommendSettings,
    leave_one_out: bool,
    seed: int,
    epochs: int | None,
    terms: sp.csr_matrix | None,
) -> ValidationSet | None:
    data = Interactions.from_events(fit_on, item_ids)
    positions = pd.Index(item_ids.astype(str))
    users = [u for u in held if data.user_index(u) is not None]
    if len(users) < 10:
        return None
    rng = np.random.default_rng(seed)
    users = rng.permutation(users)[: max(settings.validation_users, settings.ranker.users)].tolist()
    rows = [int(data.user_index(u)) for u in users]  # type: ignore[arg-type]
    held_positions = [positions.get_indexer(held[u]) for u in users]
    next_items = {row: int(p[p >= 0][0]) for row, p in zip(rows, held_positions, strict=True) if (p >= 0).any()}
    if epochs is not None:
        sources = fit_sources(data, vectors, settings, sequential_epochs=epochs, terms=terms)
    else:
        sources = fit_sources(data, vectors, settings, next_items=next_items, terms=terms)
    known = [p[p >= 0] for p in held_positions]
    return ValidationSet(
        data=data,
        sources=sources,
        histories=[History.of_user(data, row) for row in rows],
        targets=_row_matrix(known, [np.ones(len(p)) for p in known], len(item_ids)),
        sizes=np.array([len(held[u]) for u in users]),
        leave_one_out=leave_one_out,
    )


def _top_rows(scores: sp.csr_matrix, k: int) -> np.ndarray:
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    for r in range(scores.shape[0]):
        start, end = scores.indptr[r], scores.indptr[r + 1]
        data, idx = scores.data[start:end], scores.indices[start:end]
        order = np.lexsort((idx, -data))[:k]
        out[r, : len(order)] = idx[order]
    return out


@dataclass(frozen=True)
class FusionChoice:
    method: FusionMethod
    weights: dict[str, float]
    validation_ndcg: float | None  # nDCG@k on the held-out part of the training events (None: not validated)


def choose_fusion(validation: ValidationSet | None, settings: RecommendSettings, *, k: int = 20) -> FusionChoice:
    """Fusion method (the configured one, or with 'auto'/'learned' the better of weighted and rrf) and
    weights per source that maximise held-out nDCG@k over up to `validation_users` people; equal weights
    when there is nothing to validate on."""
    alone: dict[str, tuple[FusionMethod, ...]] = {"weighted": ("weighted",), "rrf": ("rrf",)}
    methods = alone.get(settings.fusion, ("weighted", "rrf"))
    if validation is None or not validation.sources:
        names = validation.sources if validation is not None else settings.sources
        return FusionChoice(methods[0], dict.fromkeys(names, 1.0), None)
    n = settings.validation_users
    histories, exclusions = validation.histories[:n], validation.exclusions()[:n]
    targets, sizes = validation.targets[:n], validation.sizes[:n]
    pool = max(settings.pool, k)
    n_items = validation.data.n_items
    lists = {name: candidates_many(source, histories, pool, exclusions) for name, source in validation.sources.items()}
    choices = []
    for method in methods:
        matrices = {
            name: _row_matrix(
                [c.positions for c in cands], [shares(c.scores, method, settings.rrf_k) for c in cands], n_items
            )
            for name, cands in lists.items()
        }
        weights, value = _coordinate_ascent(matrices, targets, sizes, k)
        choices.append(FusionChoice(method, weights, value))
    return max(choices, key=lambda c: c.validation_ndcg or 0.0)


def _coordinate_ascent(
    matrices: dict[str, sp.csr_matrix], targets: sp.csr_matrix, sizes: np.ndarray, k: int
) -> tuple[dict[str, float], float]:
    """Start from the best source alone at weight 1, then move one weight at a time over the grid while
    held-out nDCG@k improves."""

    def score(weights: dict[str, float]) -> float:
        fused = sum((w * matrices[n] for n, w in weights.items() if w > 0), sp.csr_matrix(targets.shape))
        return float(np.mean(ndcg_rows(_top_rows(sp.csr_matrix(fused), k), targets, sizes, k)))

    alone = {name: score({name: 1.0}) for name in matrices}
    weights = dict.fromkeys(matrices, 0.0)
    weights[max(alone, key=lambda n: alone[n])] = 1.0
    best = max(alone.values())
    for _ in range(ROUNDS):
        improved = False
        for name in matrices:
            for w in WEIGHT_GRID:
                trial = {**weights, name: w}
                if math.isclose(w, weights[name]) or not any(v > 0 for v in trial.values()):
                    continue
                value = score(trial)
                if value > best + 1e-4:
                    best, weights, improved = value, trial, True
        if not improved:
            break
    return weights, best


def _row_matrix(cols: list[np.ndarray], values: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])])
    data = np.concatenate(values) if values else np.zeros(0)
    indices = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    matrix = sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(len(cols), n_items))
    matrix.sum_duplicates()
    return matrix
