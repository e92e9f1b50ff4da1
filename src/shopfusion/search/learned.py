"""Learned search: the shop's judgements teach a fine-tuned bi-encoder, a cross-encoder and two LambdaMART rankers.

Pipeline per query: candidates from BM25, pretrained and fine-tuned dense retrieval (union, the `ltr_depth`
best by the served blend) → a first ranker over cheap features → the cross-encoder re-scores that ranker's top
`rerank_depth` → a second ranker adds the cross-encoder score and orders them. Every score decomposes into
per-feature contributions (the explanation).

Training splits the train queries by a hash of their id: the neural models learn from one part, the rankers
from the other (so the rankers see the neural scores as they are on unseen queries), and each model stops
early on queries it did not train on. Nothing is learned from the evaluated queries.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from shopfusion.encoders.base import TextEncoder
from shopfusion.encoders.finetune import BiEncoderTrainer, TrainReport, Triple, autocast
from shopfusion.index.text import analyze
from shopfusion.index.vector import (
    BuiltVectorIndex,
    ExactIndex,
    VectorIndex,
    build_vector_index,
    load_vector_index,
)
from shopfusion.metrics import ndcg_at_k
from shopfusion.rank.candidates import Candidates
from shopfusion.rank.cross_encoder import CrossEncoder, Judged
from shopfusion.rank.ltr import LambdaMartRanker, RankingData
from shopfusion.search.hybrid import HybridSearcher, fusion_values
from shopfusion.settings import SearchTrainingSettings
from shopfusion.workspace import atomic_path, write_text_atomic

Qrels = Mapping[str, Mapping[str, float]]
FIRST_STAGE = (
    "bm25",
    "bm25_rank",
    "dense",
    "dense_rank",
    "tuned",
    "tuned_rank",
    "blend",
    "coverage",
    "title_coverage",
    "phrase",
    "query_terms",
    "title_terms",
    "prior",
)
SECOND_STAGE = (*FIRST_STAGE, "cross_encoder", "first_stage")
# How each feature reads in an explanation (R6): the strongest positive contributions are named.
FEATURE_REASONS = {
    "bm25": "its words match the query",
    "bm25_rank": "its words match the query",
    "coverage": "it contains every query word",
    "title_coverage": "the query words are in its title",
    "phrase": "the title contains the query as typed",
    "dense": "close in meaning",
    "dense_rank": "close in meaning",
    "tuned": "close in meaning to what shoppers chose for such searches",
    "tuned_rank": "close in meaning to what shoppers chose for such searches",
    "blend": "a strong keyword and meaning match",
    "cross_encoder": "the re-ranker read it as a close match",
    "first_stage": "a strong keyword and meaning match",
    "prior": "often chosen for other searches",
}
BI_ENCODER_DIR, CROSS_ENCODER_DIR, TUNED_INDEX_DIR = "bi_encoder", "cross_encoder", "bi_encoder_index"
FIRST_RANKER, SECOND_RANKER, PRIOR_FILE, REPORT_FILE = (
    "ranker_first.txt",
    "ranker_second.txt",
    "prior.json",
    "report.json",
)
MIN_TRAIN_QUERIES = 20  # below this, nothing learned could be validated: search stays untrained
MISSING = np.nan  # LightGBM learns a direction for missing values (not retrieved by that retriever)


def cross_encoder_options(settings: SearchTrainingSettings) -> dict[str, Any]:
    """How the cross-encoder reads and computes, the same in training and serving."""
    return {
        "max_length": settings.cross_encoder_max_length,
        "precision": settings.precision,
        "quantize": settings.cross_encoder_int8,
    }


def fold_of(query_id: str, share: float) -> bool:
    """True for the deterministic `share` of query ids that train the rankers (the rest train neural models)."""
    return zlib.crc32(query_id.encode()) % 1000 < share * 1000


def _ranks(cands: Candidates, positions: np.ndarray) -> np.ndarray:
    """1-based rank of each position in a retriever's list; missing where it did not retrieve it."""
    if not len(cands.positions):
        return np.full(len(positions), MISSING, dtype=np.float32)
    order = np.argsort(cands.positions, kind="stable")
    sorted_positions = cands.positions[order]
    at = np.searchsorted(sorted_positions, positions).clip(max=len(sorted_positions) - 1)
    return np.where(sorted_positions[at] == positions, order[at] + 1.0, MISSING).astype(np.float32)


@dataclass
class Tuned:
    """The fine-tuned bi-encoder and the catalogue's vectors from it."""

    encoder: TextEncoder
    index: VectorIndex


def tuned_index(folder: Path, texts: Sequence[str], encoder: TextEncoder, exact_max_items: int) -> BuiltVectorIndex:
    """The catalogue's index from the fine-tuned bi-encoder `encoder`. It is kept in `folder` with a fingerprint
    of the model and texts it holds, so engines over an unchanged catalogue load it instead of re-encoding and
    rebuilding it (an HNSW build over 50k items takes about a minute)."""
    digest = hashlib.sha1(encoder.model_id.encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    saved, fingerprint = folder / TUNED_INDEX_DIR, digest.hexdigest()
    if (saved / "catalogue.sha1").exists() and (saved / "catalogue.sha1").read_text() == fingerprint:
        return load_vector_index(saved)
    index = build_vector_index(encoder.encode(texts), exact_max_items)
    try:
        with atomic_path(saved) as tmp:
            index.save(tmp)
            (tmp / "catalogue.sha1").write_text(fingerprint)
    except OSError:
        pass  # a read-only workspace: rebuilt at every load, as before
    return index


class Signals:
    """Everything per (query, candidate) that the rankers read, computed over the whole catalogue's indexes."""

    def __init__(
        self,
        searcher: HybridSearcher,
        titles: Sequence[str],
        texts: Sequence[str],
        prior: np.ndarray,
        tuned: Tuned | None = None,
        depth: int = 100,
    ) -> None:
        """`titles` feed the word-match features, `texts` (what the encoders read) the cross-encoder."""
        self.searcher, self.titles, self.texts = searcher, list(titles), list(texts)
        self.prior, self.tuned, self.depth = prior, tuned, depth
        self.title_tokens = [frozenset(analyze(t)) for t in self.titles]
        self.title_norm = [" ".join(t.lower().split()) for t in self.titles]
        self.tuned_searcher = (
            None if tuned is None else HybridSearcher(searcher.lexical, tuned.index, tuned.encoder, searcher.settings)
        )

    def tuned_candidates(self, query: str, mask: np.ndarray | None = None) -> Candidates | None:
        return None if self.tuned_searcher is None else self.tuned_searcher.semantic_candidates(query, mask)

    def first_stage(self, query: str, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidate positions (the `depth` best by the served blend over all retrievers) and their features.
        Each index scores the query once: its scores serve both the candidates and the features."""
        lex_scores = self.searcher.lexical.scores(query)
        q_vec = self.searcher.query_vector(query)
        lexical = self.searcher.lexical_candidates(query, mask, lex_scores)
        semantic = self.searcher.nearest(q_vec, mask)
        retrieved = [
            (lexical, self.searcher.settings.lexical_weight),
            (semantic, self.searcher.settings.semantic_weight),
        ]
        t_vec, tuned = None, None
        if self.tuned_searcher is not None:  # fine-tuned dense shares the semantic weight with the pretrained one
            t_vec = self.tuned_searcher.query_vector(query)
            tuned = self.tuned_searcher.nearest(t_vec, mask)
            retrieved.append((tuned, self.searcher.settings.semantic_weight))
        pooled = np.concatenate([c.positions for c, _ in retrieved])
        settings = self.searcher.settings
        values = np.concatenate([fusion_values(c, w, settings) for c, w in retrieved]).astype(np.float64)
        union, inverse = np.unique(pooled, return_inverse=True)
        blend = np.bincount(inverse, weights=values, minlength=len(union))
        best = np.lexsort((union, -blend))[: self.depth]  # best blend first, ties by position
        positions = union[best].astype(np.int64)
        rows = np.full((len(positions), len(FIRST_STAGE)), MISSING, dtype=np.float32)
        if not len(positions):
            return positions, rows
        column = {name: i for i, name in enumerate(FIRST_STAGE)}
        rows[:, column["bm25"]] = lex_scores[positions]
        rows[:, column["bm25_rank"]] = _ranks(lexical, positions)
        rows[:, column["dense"]] = self.searcher.vectors.subset_scores(q_vec, positions)
        rows[:, column["dense_rank"]] = _ranks(semantic, positions)
        if tuned is not None and t_vec is not None and self.tuned_searcher is not None:
            rows[:, column["tuned"]] = self.tuned_searcher.vectors.subset_scores(t_vec, positions)
            rows[:, column["tuned_rank"]] = _ranks(tuned, positions)
        rows[:, column["blend"]] = blend[best]
        rows[:, column["prior"]] = self.prior[positions]
        self._word_features(query, positions, rows, column)
        return positions, rows

    def _word_features(self, query: str, positions: np.ndarray, rows: np.ndarray, column: Mapping[str, int]) -> None:
        q_tokens = frozenset(analyze(query))
        q_norm = " ".join(query.lower().split())
        titles = [self.title_tokens[p] for p in positions.tolist()]
        matched = np.array([len(q_tokens & t) for t in titles], dtype=np.float32) / max(len(q_tokens), 1)
        rows[:, column["query_terms"]] = len(q_tokens)
        rows[:, column["title_coverage"]] = matched
        rows[:, column["coverage"]] = (matched == 1.0) & bool(q_tokens)
        rows[:, column["title_terms"]] = [len(t) for t in titles]
        rows[:, column["phrase"]] = [bool(q_norm) and q_norm in self.title_norm[p] for p in positions.tolist()]


@dataclass(frozen=True)
class LearnedHit:
    position: int
    score: float
    explain: Callable[[], dict[str, float]] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def contributions(self) -> dict[str, float]:
        """Feature → contribution; with "bias" they sum to `score`. Computed when asked: a page shows ten results
        of the hundred ranked, and SHAP values cost more than the ranking itself."""
        return self.explain() if self.explain is not None else {}

    def reason(self) -> str:
        ranked = sorted(((v, k) for k, v in self.contributions.items() if k in FEATURE_REASONS and v > 0), reverse=True)
        reasons: list[str] = []
        for _, name in ranked:
            if FEATURE_REASONS[name] not in reasons:
                reasons.append(FEATURE_REASONS[name])
            if len(reasons) == 2:
                break
        return "; ".join(reasons) or "ranked by the learned model"


class LearnedSearch:
    """Ranks with the trained models; without a cross-encoder the first-stage ranker's order is final."""

    def __init__(
        self,
        signals: Signals,
        first: LambdaMartRanker,
        cross: CrossEncoder | None = None,
        second: LambdaMartRanker | None = None,
        rerank_depth: int = 30,
    ) -> None:
        self.signals, self.first, self.cross, self.second, self.rerank_depth = (
            signals,
            first,
            cross,
            second,
            rerank_depth,
        )
        self.memo: dict[tuple[str, int], float] | None = None  # set by evaluation and training, not when serving

    def first_stage(self, query: str, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.order_first_stage(*self.signals.first_stage(query, mask))

    def order_first_stage(
        self, positions: np.ndarray, features: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates and features best first by the first ranker, with its scores."""
        scores = self.first.predict(features) if len(positions) else np.zeros(0)
        order = np.lexsort((positions, -scores))
        return positions[order], features[order], scores[order]

    def cross_scores(self, query: str, positions: Sequence[int]) -> np.ndarray:
        """Cross-encoder scores of these candidates; with `memo` set, each (query, item) pair is scored once
        however many stages ask for it."""
        assert self.cross is not None
        if self.memo is None:
            return self.cross.scores(query, [self.signals.texts[p] for p in positions])
        todo = [p for p in dict.fromkeys(positions) if (query, p) not in self.memo]
        if todo:
            fresh = self.cross.scores(query, [self.signals.texts[p] for p in todo])
            self.memo.update(zip(((query, p) for p in todo), fresh.tolist(), strict=True))
        return np.array([self.memo[(query, p)] for p in positions], dtype=np.float32)

    def second_stage_features(
        self, query: str, positions: np.ndarray, features: np.ndarray, scores: np.ndarray
    ) -> np.ndarray:
        cross = self.cross_scores(query, positions.tolist())
        return np.column_stack([features, cross, scores]).astype(np.float32)

    def rank(self, query: str, k: int | None = None, mask: np.ndarray | None = None) -> list[LearnedHit]:
        positions, features, scores = self.first_stage(query, mask)
        if self.cross is None or self.second is None or not len(positions):
            return self._hits(positions[:k], scores[:k], features[:k], self.first)
        top = min(self.rerank_depth, len(positions))
        head = self.second_stage_features(query, positions[:top], features[:top], scores[:top])
        head_scores = self.second.predict(head)
        order = np.lexsort((positions[:top], -head_scores))
        head_hits = self._hits(positions[:top][order], head_scores[order], head[order], self.second)
        # below the re-ranked head: first-stage order, scored below every head result
        floor = float(head_scores.min()) if top else 0.0
        tail_scores = floor - 1.0 - np.arange(len(positions) - top)
        tail = [LearnedHit(int(p), float(s)) for p, s in zip(positions[top:].tolist(), tail_scores, strict=True)]
        return [*head_hits, *tail][:k]

    @staticmethod
    def _hits(
        positions: np.ndarray, scores: np.ndarray, features: np.ndarray, ranker: LambdaMartRanker
    ) -> list[LearnedHit]:
        labels = [*ranker.feature_names, "bias"]

        def explainer(row: np.ndarray) -> Callable[[], dict[str, float]]:
            def explain() -> dict[str, float]:
                values = ranker.contributions(row[None, :])[0]
                return {n: float(v) for n, v in zip(labels, values, strict=True)}

            return explain

        return [
            LearnedHit(int(p), float(s), explainer(row))
            for p, s, row in zip(positions.tolist(), scores.tolist(), features, strict=True)
        ]

    def save(self, folder: Path, item_ids: Sequence[str]) -> None:
        """Rankers, the cross-encoder where its stage is used, and the item prior by item id (the bi-encoder is
        saved where it was trained: the catalogue is re-encoded from that folder)."""
        self.first.save(folder / FIRST_RANKER)
        if self.second is not None and self.cross is not None:
            self.second.save(folder / SECOND_RANKER)
            self.cross.save(folder / CROSS_ENCODER_DIR)
        prior = {item_id: float(v) for item_id, v in zip(item_ids, self.signals.prior.tolist(), strict=True) if v}
        write_text_atomic(folder / PRIOR_FILE, json.dumps(prior))


@dataclass
class TrainingReport:
    train_queries: int = 0
    neural_queries: int = 0
    ranker_queries: int = 0
    bi_encoder: dict[str, object] = field(default_factory=dict)
    cross_encoder: dict[str, object] = field(default_factory=dict)
    first_ranker_ndcg: float | None = None
    second_ranker_ndcg: float | None = None
    blend_validation_ndcg: float | None = None
    learned_validation_ndcg: float | None = None
    first_stage_validation_ndcg: float | None = None  # the learned pipeline without its cross-encoder stage
    cross_encoder_used: bool = False
    used: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(asdict(self), indent=2))


def _train_summary(report: TrainReport) -> dict[str, object]:
    return {
        "validation_ndcg": [round(v, 4) for v in report.validation],
        "best_epoch": report.best_epoch,
        "steps": report.steps,
        "seconds": round(report.seconds, 1),
        "stopped_by_time": report.stopped_by_time,
    }


def _reorder_ndcg(
    lists: Mapping[str, Sequence[int]], score: Callable[[str, list[int]], np.ndarray], qrels: Qrels, ids: Sequence[str]
) -> float:
    """Mean nDCG@10 of each query's candidate list reordered by `score` (a validation proxy for retrieval)."""
    values = []
    for qid, positions in lists.items():
        scores = score(qid, list(positions))
        order = [positions[i] for i in np.argsort(-scores, kind="stable")]
        values.append(ndcg_at_k([ids[p] for p in order], qrels[qid], 10))
    return float(np.mean(values)) if values else 0.0


@dataclass(frozen=True)
class _NeuralRun:
    """What both neural models train and validate on: their train queries with hard negatives, and candidate
    lists of held-out queries for validation."""

    queries: Mapping[str, str]
    qrels: Qrels
    neural: list[str]
    negatives: Mapping[str, list[int]]
    candidates: Mapping[str, list[int]]
    top_grade: float

    def fields(
        self,
    ) -> tuple[Mapping[str, str], Qrels, list[str], Mapping[str, list[int]], Mapping[str, list[int]], float]:
        return self.queries, self.qrels, self.neural, self.negatives, self.candidates, self.top_grade


class SearchTrainer:
    """Trains every learned stage from (query, item, grade) judgements over one catalogue."""

    def __init__(
        self,
        searcher: HybridSearcher,
        item_ids: Sequence[str],
        titles: Sequence[str],
        texts: Sequence[str],
        settings: SearchTrainingSettings,
        *,
        base_model: Path,
        make_tuned_encoder: Callable[[Path], TextEncoder],
        log: Callable[[str], None] = print,
    ) -> None:
        self.searcher, self.ids, self.settings = searcher, list(item_ids), settings
        self.titles, self.texts = list(titles), list(texts)
        self.position = {item_id: p for p, item_id in enumerate(self.ids)}
        self.base_model, self.make_tuned_encoder, self.log = base_model, make_tuned_encoder, log
        self.rng = random.Random(settings.seed)

    def _prior(self, qrels: Qrels) -> np.ndarray:
        """log(1 + judgements with a positive grade) per item: what shoppers chose before, for any query."""
        counts = np.zeros(len(self.ids), dtype=np.float32)
        for grades in qrels.values():
            for item_id, grade in grades.items():
                if grade > 0 and item_id in self.position:
                    counts[self.position[item_id]] += 1
        return np.log1p(counts)

    def _negatives(self, query: str, judged: Mapping[str, float], depth: int = 30) -> list[int]:
        """Top hybrid results that nobody judged: near misses, the most useful negatives."""
        hits = self.searcher.search(query, depth)
        unjudged = [h.position for h in hits if self.ids[h.position] not in judged]
        return unjudged[: self.settings.negatives_per_query]

    def train(
        self, queries: Mapping[str, str], qrels: Qrels, out: Path, item_pairs: Sequence[tuple[str, str]] = ()
    ) -> tuple[LearnedSearch | None, TrainingReport]:
        """The trained pipeline (None when the judgements are too few to train and validate it) and its report,
        both written to `out`. `item_pairs` (item ids picked together) only add bi-encoder training pairs: every
        model is still validated on held-out judged queries."""
        cfg, report = self.settings, TrainingReport()
        qids = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
        neural = [q for q in qids if not fold_of(q, cfg.ranker_share)]
        ranker = [q for q in qids if fold_of(q, cfg.ranker_share)]
        report.train_queries, report.neural_queries, report.ranker_queries = len(qids), len(neural), len(ranker)
        out.mkdir(parents=True, exist_ok=True)
        if len(qids) < MIN_TRAIN_QUERIES or not any(fold_of(q + "/valid", 0.25) for q in ranker):
            self.log(f"{len(qids)} judged train queries: too few to train and validate learned search")
            report.save(out / REPORT_FILE)
            return None, report
        top_grade = max((g for q in qids for g in qrels[q].values()), default=1.0) or 1.0
        validation = ranker[: min(len(ranker), 200)]
        candidates = {q: [h.position for h in self.searcher.search(queries[q], 40)] for q in validation}
        self.log(f"training on {len(neural)} queries (neural) + {len(ranker)} (rankers)")

        started = time.perf_counter()
        negatives = {q: self._negatives(queries[q], qrels[q]) for q in neural}
        report.seconds["negatives"] = round(time.perf_counter() - started, 1)

        run = _NeuralRun(queries, qrels, neural, negatives, candidates, top_grade)
        tuned = self._train_bi_encoder(run, out, report, item_pairs)
        cross = self._train_cross_encoder(run, out, report)

        started = time.perf_counter()
        signals = Signals(
            self.searcher, self.titles, self.texts, self._prior({q: qrels[q] for q in neural}), tuned, cfg.ltr_depth
        )
        learned = self._train_rankers(signals, cross, queries, qrels, ranker, report)
        report.seconds["rankers"] = round(time.perf_counter() - started, 1)
        learned.save(out, self.ids)
        report.save(out / REPORT_FILE)
        return learned, report

    def _co_interaction_triples(self, item_pairs: Sequence[tuple[str, str]]) -> list[Triple]:
        """(text of one item, text of an item picked with it, a random other item) for the contrastive loss; the
        in-batch negatives do most of the teaching, the random one keeps the Triple shape."""
        triples = []
        for a, b in ((self.position.get(a), self.position.get(b)) for a, b in item_pairs):
            others = [p for p in self.rng.sample(range(len(self.ids)), min(3, len(self.ids))) if p not in (a, b)]
            if a is not None and b is not None and others:
                triples.append(Triple(self.texts[a], self.texts[b], self.texts[others[0]]))
        return triples

    def _train_bi_encoder(
        self, run: _NeuralRun, out: Path, report: TrainingReport, item_pairs: Sequence[tuple[str, str]] = ()
    ) -> Tuned | None:
        queries, qrels, neural, negatives, candidates, top_grade = run.fields()
        cfg = self.settings
        if cfg.bi_encoder_epochs == 0:
            return None
        judged = [
            Triple(queries[q], self.texts[self.position[item]], self.texts[self.rng.choice(negatives[q])])
            for q in neural
            if negatives[q]
            for item, grade in qrels[q].items()
            if grade >= top_grade / 2 and item in self.position
        ]
        co_interaction = self._co_interaction_triples(item_pairs)
        triples = judged + co_interaction
        trainer = BiEncoderTrainer(
            self.base_model,
            epochs=cfg.bi_encoder_epochs,
            batch_size=cfg.bi_encoder_batch_size,
            lr=cfg.bi_encoder_lr,
            max_seconds=cfg.max_seconds / 2,
            seed=cfg.seed,
            precision=cfg.precision,
        )

        def validate(model: object) -> float:
            def score(qid: str, positions: list[int]) -> np.ndarray:
                vectors = trainer.model.encode(
                    [queries[qid]] + [self.texts[p] for p in positions],
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                )
                return np.asarray(vectors[1:] @ vectors[0])

            return _reorder_ndcg(candidates, score, qrels, self.ids)

        self.log(
            f"fine-tuning the bi-encoder on {len(judged)} (query, item, hard negative) triples"
            + (f" and {len(co_interaction)} co-interaction item pairs" if co_interaction else "")
        )
        fit = trainer.fit(triples, validate)
        report.bi_encoder = {"triples": len(judged), "co_interaction_pairs": len(co_interaction), **_train_summary(fit)}
        self.log(f"bi-encoder validation nDCG@10 by epoch: {report.bi_encoder['validation_ndcg']}")
        report.seconds["bi_encoder"] = round(fit.seconds, 1)
        if fit.best_epoch == 0:
            return None
        trainer.save(out / BI_ENCODER_DIR)
        started = time.perf_counter()
        encoder = self.make_tuned_encoder(out / BI_ENCODER_DIR)
        with autocast(cfg.precision):  # bfloat16 vectors agree with float32 ones to a cosine of 0.99998
            index = ExactIndex(encoder.encode(self.texts, show_progress=True))
        report.seconds["encode_catalogue"] = round(time.perf_counter() - started, 1)
        return Tuned(encoder, index)

    def _train_cross_encoder(self, run: _NeuralRun, out: Path, report: TrainingReport) -> CrossEncoder | None:
        queries, qrels, neural, negatives, candidates, top_grade = run.fields()
        cfg = self.settings
        if cfg.cross_encoder_epochs == 0:
            return None
        pairs = [
            Judged(queries[q], self.texts[self.position[item]], min(max(grade / top_grade, 0.0), 1.0))
            for q in neural
            for item, grade in qrels[q].items()
            if item in self.position
        ] + [Judged(queries[q], self.texts[p], 0.0) for q in neural for p in negatives[q]]
        cross = CrossEncoder(self.base_model, **cross_encoder_options(cfg))

        def validate(model: CrossEncoder) -> float:
            return _reorder_ndcg(
                candidates, lambda q, ps: model.scores(queries[q], [self.texts[p] for p in ps]), qrels, self.ids
            )

        self.log(f"training the cross-encoder on {len(pairs)} judged pairs")
        fit = cross.fit(
            pairs,
            validate,
            epochs=cfg.cross_encoder_epochs,
            batch_size=cfg.cross_encoder_batch_size,
            lr=cfg.cross_encoder_lr,
            head_lr=cfg.cross_encoder_head_lr,
            max_seconds=cfg.max_seconds / 2,
            seed=cfg.seed,
        )
        report.cross_encoder = {"pairs": len(pairs), **_train_summary(fit)}
        self.log(f"cross-encoder validation nDCG@10 by epoch: {report.cross_encoder['validation_ndcg']}")
        report.seconds["cross_encoder"] = round(fit.seconds, 1)
        return None if fit.best_epoch == 0 else cross

    def _train_rankers(
        self,
        signals: Signals,
        cross: CrossEncoder | None,
        queries: Mapping[str, str],
        qrels: Qrels,
        ranker_qids: list[str],
        report: TrainingReport,
    ) -> LearnedSearch:
        cfg = self.settings
        fit_qids = [q for q in ranker_qids if not fold_of(q + "/valid", 0.25)]
        valid_qids = [q for q in ranker_qids if fold_of(q + "/valid", 0.25)]
        first_rows = {q: signals.first_stage(queries[q]) for q in ranker_qids}

        def grades(q: str, positions: np.ndarray) -> np.ndarray:
            return np.array([qrels[q].get(self.ids[p], 0.0) for p in positions.tolist()])

        def data(qids: list[str], rows: Mapping[str, tuple[np.ndarray, np.ndarray]], width: int) -> RankingData:
            return RankingData.concat([(rows[q][1], grades(q, rows[q][0])) for q in qids], width)

        def validation_ndcg(rank: Callable[[str], Sequence[int]]) -> float:
            values = [ndcg_at_k([self.ids[p] for p in rank(queries[q])], qrels[q], 10) for q in valid_qids]
            return float(np.mean(values)) if values else 0.0

        first = LambdaMartRanker(FIRST_STAGE, seed=cfg.seed).fit(
            data(fit_qids, first_rows, len(FIRST_STAGE)), data(valid_qids, first_rows, len(FIRST_STAGE))
        )
        report.first_ranker_ndcg = first.validation_ndcg
        learned = LearnedSearch(signals, first, rerank_depth=cfg.rerank_depth)
        report.first_stage_validation_ndcg = validation_ndcg(lambda q: [h.position for h in learned.rank(q, 10)])
        report.learned_validation_ndcg = report.first_stage_validation_ndcg
        if cross is not None:
            learned.cross, learned.memo = cross, {}
            ordered = {q: learned.order_first_stage(*first_rows[q]) for q in ranker_qids}
            heads = {q: ordered[q][0][: cfg.rerank_depth].tolist() for q in ranker_qids}
            pairs = [(queries[q], p) for q in ranker_qids for p in heads[q]]
            # one call over every query's head: batched by length, the cheapest way to score them all
            scores = cross.score_pairs([t for t, _ in pairs], [signals.texts[p] for _, p in pairs])
            learned.memo.update(zip(pairs, scores.tolist(), strict=True))
            second_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for q in ranker_qids:
                positions, features, first_scores = (part[: len(heads[q])] for part in ordered[q])
                second_rows[q] = (
                    positions,
                    learned.second_stage_features(queries[q], positions, features, first_scores),
                )
            learned.second = LambdaMartRanker(SECOND_STAGE, seed=cfg.seed, min_data_in_leaf=20).fit(
                data(fit_qids, second_rows, len(SECOND_STAGE)), data(valid_qids, second_rows, len(SECOND_STAGE))
            )
            report.second_ranker_ndcg = learned.second.validation_ndcg
            with_cross = validation_ndcg(lambda q: [h.position for h in learned.rank(q, 10)])
            # The cross-encoder stage costs most of a query's time: kept only where it beats the first ranker alone.
            report.cross_encoder_used = with_cross > report.first_stage_validation_ndcg
            if report.cross_encoder_used:
                report.learned_validation_ndcg = with_cross
            else:
                learned.second = None
            learned.memo = None
        # Serve the learned pipeline only where it beats the untrained blend on the held-out ranker queries.
        report.blend_validation_ndcg = validation_ndcg(lambda q: [h.position for h in self.searcher.search(q, 10)])
        report.used = report.learned_validation_ndcg > report.blend_validation_ndcg
        self.log(
            f"held-out ranker queries: learned nDCG@10 {report.learned_validation_ndcg:.4f} "
            f"(first ranker alone {report.first_stage_validation_ndcg:.4f}) vs blend {report.blend_validation_ndcg:.4f}"
        )
        return learned


def serves_learned(folder: Path) -> bool:
    """Whether `folder` holds a trained search that beat the untrained blend on held-out queries (so it serves)."""
    report_path = folder / REPORT_FILE
    return report_path.exists() and bool(json.loads(report_path.read_text()).get("used"))


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
    cross_dir = folder / CROSS_ENCODER_DIR
    cross = CrossEncoder.load(cross_dir, **cross_encoder_options(settings)) if cross_dir.exists() else None
    second = LambdaMartRanker.load(folder / SECOND_RANKER) if (folder / SECOND_RANKER).exists() else None
    return LearnedSearch(signals, LambdaMartRanker.load(folder / FIRST_RANKER), cross, second, settings.rerank_depth)
