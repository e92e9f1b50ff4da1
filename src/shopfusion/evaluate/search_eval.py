"""`shopfusion eval search`: every retrieval method ranks the whole catalogue for each judged query.

Formats and metrics follow ../shared/data/README.md: products.csv (item_id,title[,...]), queries.tsv, qrels.tsv;
nDCG@k with linear gain, Recall@100, MRR@k; queries without a positive grade are skipped.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from shopfusion.build.artifacts import make_encoder, trained_search_dir
from shopfusion.catalog.benchmarks import Qrels, load_products, load_qrels, load_queries
from shopfusion.catalog.schema import Item
from shopfusion.encoders import resolve_model
from shopfusion.encoders.base import TextEncoder
from shopfusion.index.lexical import Bm25Index, weighted_tokens
from shopfusion.index.vector import ExactIndex
from shopfusion.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from shopfusion.rank.candidates import Candidates
from shopfusion.search.hybrid import HybridSearcher, fuse
from shopfusion.search.learned import LearnedSearch
from shopfusion.search.training import SearchTrainer, TrainingReport
from shopfusion.settings import SearchSettings, Settings
from shopfusion.workspace import Workspace

RECALL_DEPTH = 100


@dataclass
class Scores:
    """Metric sums of one method over the evaluated queries."""

    ndcg: float = 0.0
    recall: float = 0.0
    mrr: float = 0.0
    queries: int = 0

    def add(self, ranked: list[str], grades: Mapping[str, float], k: int) -> None:
        self.ndcg += ndcg_at_k(ranked, grades, k)
        self.recall += recall_at_k(ranked, grades, RECALL_DEPTH)
        self.mrr += mrr_at_k(ranked, grades, k)
        self.queries += 1

    def report(self, k: int) -> dict[str, float]:
        n = max(self.queries, 1)
        return {
            f"ndcg@{k}": round(self.ndcg / n, 4),
            f"recall@{RECALL_DEPTH}": round(self.recall / n, 4),
            f"mrr@{k}": round(self.mrr / n, 4),
            "queries": self.queries,
        }


Retrieved = tuple[Candidates, Candidates]
Method = Callable[[Candidates, Candidates], list[int]]
DEFAULT_METHOD = "shopfusion"
WEIGHT_GRID = tuple(round(0.1 * i, 1) for i in range(11))


def fusion_method(settings: SearchSettings, fusion: str | None = None) -> Method:
    """Ranking by `fuse` with these settings (and `fusion` instead of the configured one, if given)."""

    def rank(lex: Candidates, sem: Candidates) -> list[int]:
        fused = fuse(lex, sem, settings, fusion)
        return sorted(fused, key=lambda p: (-fused[p], p))[:RECALL_DEPTH]

    return rank


def score_method(method: Method, retrieved: Mapping[str, Retrieved], judged: Qrels, ids: list[str], k: int) -> Scores:
    scores = Scores()
    for qid, (lex, sem) in retrieved.items():
        scores.add([ids[p] for p in method(lex, sem)], judged[qid], k)
    return scores


def learn_blend_weights(
    retrieved: Mapping[str, Retrieved], judged: Qrels, ids: list[str], base: SearchSettings, k: int
) -> SearchSettings:
    """Blend weights (lexical w, semantic 1 − w) maximising nDCG@k on the given (train) queries only."""
    best: tuple[float, SearchSettings] | None = None
    for w in WEIGHT_GRID:
        candidate = base.model_copy(update={"fusion": "blend", "lexical_weight": w, "semantic_weight": round(1 - w, 1)})
        ndcg = score_method(fusion_method(candidate), retrieved, judged, ids, k).ndcg
        if best is None or ndcg > best[0]:
            best = (ndcg, candidate)
    assert best is not None
    return best[1]


def build_searcher(items: list[Item], encoder: TextEncoder, settings: SearchSettings) -> HybridSearcher:
    """Indexes over the whole catalogue; exact vectors so that dense ranking is exact, not approximate."""
    lexical = Bm25Index.build([weighted_tokens(i, settings.field_weights) for i in items])
    vectors = ExactIndex(encoder.encode([i.text() for i in items], show_progress=True))
    return HybridSearcher(lexical, vectors, encoder, settings)


def score_learned_stages(
    learned: LearnedSearch,
    texts: Mapping[str, str],
    judged: Qrels,
    ids: list[str],
    k: int,
    blend: Method,
    retrieved: Mapping[str, Retrieved],
) -> dict[str, Scores]:
    """Each learned stage on the evaluated queries: fine-tuned dense alone, the served blend re-ranked by the
    cross-encoder alone, and the full learned ranking (the cross-encoder scores each pair once for both)."""
    stages = {name: Scores() for name in ("dense-finetuned", "+cross-encoder", "+ltr")}
    signals, depth = learned.signals, learned.rerank_depth
    for qid, query in texts.items():
        memoised = learned.with_cross_memo()
        tuned = signals.tuned_candidates(query)
        if tuned is not None:
            stages["dense-finetuned"].add([ids[p] for p in tuned.positions[:RECALL_DEPTH].tolist()], judged[qid], k)
        ranked = blend(*retrieved[qid])
        if learned.cross is not None:
            head = ranked[:depth]
            cross = memoised.cross_scores(query, head)
            ranked = [head[i] for i in np.argsort(-cross, kind="stable")] + ranked[depth:]
            stages["+cross-encoder"].add([ids[p] for p in ranked], judged[qid], k)
        stages["+ltr"].add([ids[h.position] for h in memoised.rank(query, RECALL_DEPTH)], judged[qid], k)
    return {name: s for name, s in stages.items() if s.queries}


def run_search_eval(
    *,
    products: Path,
    queries: Path,
    qrels: Path,
    json_out: Path,
    train_queries: Path | None = None,
    train_qrels: Path | None = None,
    k: int = 10,
    workspace: Path | None = None,
    console: Console | None = None,
) -> dict[str, object]:
    console = console or Console()
    started = time.perf_counter()
    items, skipped = load_products(products)
    eval_queries, judged = load_queries(queries), load_qrels(qrels)
    qids = [q for q in eval_queries if any(g > 0 for g in judged.get(q, {}).values())]
    console.print(f"{len(items)} products ({skipped} invalid rows skipped), {len(qids)} judged queries")
    with tempfile.TemporaryDirectory(prefix="shopfusion-eval-") as tmp:
        ws = Workspace.init(workspace or Path(tmp))
        settings = Settings.load(ws.root)
        served = settings.search.model_copy(update={"candidates": max(settings.search.candidates, RECALL_DEPTH)})
        encoder = make_encoder(ws, settings)
        searcher = build_searcher(items, encoder, served)
        ids = [i.item_id for i in items]

        def retrieve(texts: Mapping[str, str]) -> dict[str, Retrieved]:
            encoder.encode(list(texts.values()))  # one batch; the per-query lookups then hit the cache
            return {q: (searcher.lexical_candidates(t), searcher.semantic_candidates(t)) for q, t in texts.items()}

        default_settings, learned_from = served, "settings"
        learned: LearnedSearch | None = None
        training: TrainingReport | None = None
        if train_queries is not None and train_qrels is not None:
            train_texts, train_judged = load_queries(train_queries), load_qrels(train_qrels)
            train_ids = {q: t for q, t in train_texts.items() if any(g > 0 for g in train_judged.get(q, {}).values())}
            default_settings = learn_blend_weights(retrieve(train_ids), train_judged, ids, served, k)
            learned_from = f"{len(train_ids)} train queries"
            searcher = searcher.with_settings(default_settings)
            trainer = SearchTrainer(
                searcher,
                ids,
                [i.title for i in items],
                [i.text() for i in items],
                settings.search.training,
                base_model=resolve_model(settings.encoder.model),
                make_tuned_encoder=lambda folder: make_encoder(ws, settings, str(folder)),
                log=console.print,
            )
            out = trained_search_dir(ws)
            shutil.rmtree(out, ignore_errors=True)  # nothing of an earlier run may be loaded with this one's models
            learned, training = trainer.train(train_ids, train_judged, out)
        equal = served.model_copy(update={"lexical_weight": 1.0, "semantic_weight": 1.0})
        methods: dict[str, Method] = {
            "bm25": lambda lex, sem: lex.positions[:RECALL_DEPTH].tolist(),
            "dense": lambda lex, sem: sem.positions[:RECALL_DEPTH].tolist(),
            "hybrid": fusion_method(equal, "rrf"),
            "blend": fusion_method(equal, "blend"),
            DEFAULT_METHOD: fusion_method(default_settings),
        }
        texts = {q: eval_queries[q] for q in qids}
        evaluated = retrieve(texts)
        scores = {name: score_method(method, evaluated, judged, ids, k) for name, method in methods.items()}
        if learned is not None and training is not None:
            stages = score_learned_stages(learned, texts, judged, ids, k, fusion_method(default_settings), evaluated)
            scores.update(stages)
            if training.used:
                scores[DEFAULT_METHOD] = stages["+ltr"]
        encoder.cache.close()
    default = DEFAULT_METHOD
    report: dict[str, object] = {
        "methods": {name: s.report(k) for name, s in scores.items()},
        "default": default,
        "default_pipeline": {
            "fusion": default_settings.fusion,
            "lexical_weight": default_settings.lexical_weight,
            "semantic_weight": default_settings.semantic_weight,
            "weights_from": learned_from,
            "learned_ranker": bool(training and training.used),
        },
        "training": asdict(training) if training else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(report, indent=2))
    table = Table(title=f"search evaluation: {len(qids)} queries, {len(items)} products")
    for column in ("method", f"nDCG@{k}", f"Recall@{RECALL_DEPTH}", f"MRR@{k}", "queries"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, s in scores.items():
        row = s.report(k)
        label = f"{name} (default)" if name == default else name
        table.add_row(label, *(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
    return report
