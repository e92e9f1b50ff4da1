"""Training of the learned search from (query, item, grade) judgements over one catalogue.

The train queries are split by a hash of their id: the neural models learn from one part, the rankers from the
other (so the rankers see the neural scores as they are on unseen queries), and each model stops early on
queries it did not train on. Nothing is learned from the evaluated queries.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from shopfusion.catalog.benchmarks import Qrels
from shopfusion.encoders.base import TextEncoder
from shopfusion.encoders.finetune import BiEncoderTrainer, FineTuneReport, Triple, autocast
from shopfusion.index.vector import ExactIndex
from shopfusion.metrics import ndcg_at_k
from shopfusion.rank.cross_encoder import CrossEncoder, Judged
from shopfusion.rank.ltr import LambdaRankTrees, RankingData
from shopfusion.search.hybrid import HybridSearcher
from shopfusion.search.learned import LearnedSearch
from shopfusion.search.ltr_features import FIRST_STAGE, SECOND_STAGE, Signals, Tuned
from shopfusion.search.trained_files import bi_encoder_dir, cross_encoder_options, save_learned, write_report
from shopfusion.settings import SearchTrainingSettings

MIN_TRAIN_QUERIES = 20  # below this, nothing learned could be validated: search stays untrained
RANKER_THREADS = 2
# The second ranker learns from each query's re-ranked head only: fewer rows, so smaller leaves.
SECOND_RANKER_MIN_CHILD_SAMPLES = 20


def fold_of(query_id: str, share: float) -> bool:
    """True for the deterministic `share` of query ids that train the rankers (the rest train neural models)."""
    return zlib.crc32(query_id.encode()) % 1000 < share * 1000


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

    def save(self, folder: Path) -> None:
        write_report(folder, asdict(self))


def _train_summary(report: FineTuneReport) -> dict[str, object]:
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
            report.save(out)
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
        save_learned(learned, out, self.ids)
        report.save(out)
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
        trainer.save(bi_encoder_dir(out))
        started = time.perf_counter()
        encoder = self.make_tuned_encoder(bi_encoder_dir(out))
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

        def fit(features: tuple[str, ...], rows: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> LambdaRankTrees:
            settings = cfg.ranker
            if features == SECOND_STAGE:
                leaf = min(settings.min_child_samples, SECOND_RANKER_MIN_CHILD_SAMPLES)
                settings = settings.model_copy(update={"min_child_samples": leaf})
            train, valid = data(fit_qids, rows, len(features)), data(valid_qids, rows, len(features))
            return LambdaRankTrees.fit_graded(
                settings, features, train, valid, eval_at=10, seed=cfg.seed, threads=RANKER_THREADS
            )

        first = fit(FIRST_STAGE, first_rows)
        report.first_ranker_ndcg = first.validation_ndcg
        learned = LearnedSearch(signals, first, cross, rerank_depth=cfg.rerank_depth)  # the first ranker's order
        report.first_stage_validation_ndcg = validation_ndcg(lambda q: [h.position for h in learned.rank(q, 10)])
        report.learned_validation_ndcg = report.first_stage_validation_ndcg
        if cross is not None:
            ordered = {q: learned.order_first_stage(*first_rows[q]) for q in ranker_qids}
            heads = {q: ordered[q][0][: cfg.rerank_depth].tolist() for q in ranker_qids}
            pairs = [(queries[q], p) for q in ranker_qids for p in heads[q]]
            # one call over every query's head: batched by length, the cheapest way to score them all
            scores = cross.score_pairs([t for t, _ in pairs], [signals.texts[p] for _, p in pairs])
            memo = dict(zip(pairs, scores.tolist(), strict=True))
            memoised = learned.with_cross_memo(memo)
            second_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for q in ranker_qids:
                positions, features, first_scores = (part[: len(heads[q])] for part in ordered[q])
                second_rows[q] = (
                    positions,
                    memoised.second_stage_features(queries[q], positions, features, first_scores),
                )
            second = fit(SECOND_STAGE, second_rows)
            report.second_ranker_ndcg = second.validation_ndcg
            both = LearnedSearch(signals, first, cross, second, cfg.rerank_depth, cross_memo=memo)
            with_cross = validation_ndcg(lambda q: [h.position for h in both.rank(q, 10)])
            # The cross-encoder stage costs most of a query's time: kept only where it beats the first ranker alone.
            report.cross_encoder_used = with_cross > report.first_stage_validation_ndcg
            if report.cross_encoder_used:
                report.learned_validation_ndcg = with_cross
                learned = LearnedSearch(signals, first, cross, second, cfg.rerank_depth)
        # Serve the learned pipeline only where it beats the untrained blend on the held-out ranker queries.
        report.blend_validation_ndcg = validation_ndcg(lambda q: [h.position for h in self.searcher.search(q, 10)])
        report.used = report.learned_validation_ndcg > report.blend_validation_ndcg
        self.log(
            f"held-out ranker queries: learned nDCG@10 {report.learned_validation_ndcg:.4f} "
            f"(first ranker alone {report.first_stage_validation_ndcg:.4f}) vs blend {report.blend_validation_ndcg:.4f}"
        )
        return learned
