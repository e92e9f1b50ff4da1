"""In-process search latency (p50/p95/p99) of every method on the Home Depot catalogue, beside two baselines
measured in the same run: a bm25s-only index over titles and an exact dense scan. Also compares the lexical
backends bm25s and tantivy on quality (nDCG@10) and latency.

    .venv/bin/python bench/search_latency.py [--workspace DIR] [--queries 500]

`--workspace` holds the embedding cache (the same folder as `shopfusion eval search --workspace`), so item
vectors are encoded once. Query encoding is always measured: the timed searches use the uncached encoder.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
import torch

from shopfusion.build.artifacts import make_encoder
from shopfusion.catalog.benchmarks import load_products, load_qrels, load_queries
from shopfusion.catalog.schema import Item
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.encoders import resolve_model
from shopfusion.evaluate.search_eval import Scores
from shopfusion.index.lexical import Bm25Index, weighted_tokens
from shopfusion.index.vector import ExactIndex, HnswIndex
from shopfusion.rank.candidates import Candidates
from shopfusion.rank.cross_encoder import CrossEncoder
from shopfusion.search.hybrid import HybridSearcher
from shopfusion.search.ltr_features import Tuned
from shopfusion.search.service import SearchService
from shopfusion.search.trained_files import BI_ENCODER_DIR, cross_encoder_options, load_learned, tuned_index
from shopfusion.settings import Settings
from shopfusion.workspace import Workspace

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "search" / "homedepot"
TOP = 10


def timed(call: Callable[[str], object], queries: list[str]) -> np.ndarray:
    """Milliseconds per call, one call per query, after a short warm-up."""
    for query in queries[:20]:
        call(query)
    out = []
    for query in queries:
        start = time.perf_counter()
        call(query)
        out.append((time.perf_counter() - start) * 1000)
    return np.array(out)


def percentiles(ms: np.ndarray) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def top_k(scores: np.ndarray, k: int = TOP) -> np.ndarray:
    return Candidates.top(scores, k).positions


class PlainBm25s:
    """The reference: bm25s with its own tokenizer (English stopwords, Snowball stemmer) over titles only."""

    def __init__(self, titles: list[str]) -> None:
        self.stemmer = Stemmer.Stemmer("english")
        self.model = bm25s.BM25()
        corpus = bm25s.tokenize(titles, stopwords="en", stemmer=self.stemmer, show_progress=False)
        self.model.index(corpus, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self.stemmer, show_progress=False, return_ids=False)
        known = [t for t in tokens[0] if t in self.model.vocab_dict]
        return self.model.get_scores(known) if known else np.zeros(self.model.scores["num_docs"])


class Tantivy:
    """tantivy with its English stemming tokenizer over titles; queries parsed leniently (typos can't break it)."""

    def __init__(self, titles: list[str]) -> None:
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("title", stored=False, tokenizer_name="en_stem")
        builder.add_integer_field("pos", stored=True, fast=True)
        self.index = tantivy.Index(builder.build())
        writer = self.index.writer(heap_size=200_000_000, num_threads=1)
        for pos, title in enumerate(titles):
            writer.add_document(tantivy.Document(title=title, pos=pos))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def top(self, query: str, k: int = TOP) -> list[int]:
        parsed, _errors = self.index.parse_query_lenient(query, ["title"])
        hits = self.searcher.search(parsed, k).hits
        return [int(self.searcher.doc(address)["pos"][0]) for _score, address in hits]


def learned_rows(
    folder: Path, ws: Workspace, settings: Settings, searcher: HybridSearcher, items: list[Item], sample: list[str]
) -> dict[str, np.ndarray]:
    """The trained pipeline with and without its cross-encoder (query encodings not cached, as above)."""
    cached = make_encoder(ws, settings, str(folder / BI_ENCODER_DIR))
    texts = [i.text() for i in items]
    index = tuned_index(folder, texts, cached, settings.search.exact_vector_max_items)  # as the engine loads it
    cached.cache.close()
    tuned_settings = settings.search.model_copy(update={"query_vector_cache": 0})
    tuned = Tuned(cached.encoder, index)
    learned = load_learned(
        folder, searcher, [i.item_id for i in items], [i.title for i in items], texts, tuned, settings.search.training
    )
    if learned is None:
        print(f"learned search in {folder}: not trained or not used (see its report.json)")
        return {}
    learned.signals.tuned_searcher = HybridSearcher(searcher.lexical, tuned.index, tuned.encoder, tuned_settings)
    cross, depth = learned.cross, learned.rerank_depth
    learned.cross = None
    rows = {"learned, first ranker only": timed(lambda q: learned.rank(q, TOP), sample)}
    full: Callable[[str], object]
    if cross is not None and learned.second is not None:
        learned.cross = cross
        name, full = "learned + cross-encoder", lambda q: learned.rank(q, TOP)
    else:  # the cost of the stage does not depend on its weights: timed with the untrained cross-encoder
        print(f"learned search in {folder}: cross-encoder stage not served; its cost is timed untrained")
        cross = CrossEncoder(resolve_model(settings.encoder.model), **cross_encoder_options(settings.search.training))
        name = "first ranker + cross-enc. (cost)"

        def full(query: str) -> object:
            head = learned.first_stage(query)[0][:depth].tolist()
            return cross.scores(query, [texts[p] for p in head])

    heads = {q: learned.first_stage(q)[0][:depth].tolist() for q in sample}
    rows[f"cross-encoder alone, {depth} pairs"] = timed(lambda q: cross.scores(q, [texts[p] for p in heads[q]]), sample)
    rows[f"{name} top {depth}"] = timed(full, sample)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    rows[f"{name} top {depth}, 2 threads"] = timed(full, sample)
    torch.set_num_threads(threads)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--workspace", type=Path, default=None, help="Embedding cache folder (default: temp)")
    parser.add_argument("--queries", type=int, default=500, help="Timed queries per method")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for query encoding")
    parser.add_argument(
        "--trained",
        type=Path,
        default=None,
        help="Learned search folder (`eval search --train-*` writes "
        "WORKSPACE/trained/search): adds the learned pipeline's rows",
    )
    args = parser.parse_args()
    if not (args.data / "products.csv").exists():
        print(f"SKIPPED: the Home Depot benchmark is not at {args.data} (../shared/data is absent)")
        return
    torch.set_num_threads(args.threads)
    items, _ = load_products(args.data / "products.csv")
    queries, qrels = load_queries(args.data / "queries.tsv"), load_qrels(args.data / "qrels.tsv")
    sample = random.Random(0).sample(sorted(set(queries.values())), min(args.queries, len(queries)))
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.init(args.workspace or Path(tmp))
        settings = Settings.load(ws.root)
        cached = make_encoder(ws, settings)
        vectors = cached.encode([i.text() for i in items], show_progress=True)
        cached.cache.close()
    encoder = cached.encoder  # timed searches encode every query for real
    search = settings.search
    lexical = Bm25Index.build([weighted_tokens(i, search.field_weights) for i in items])
    exact, hnsw = ExactIndex(vectors), HnswIndex.build(vectors)
    print(f"{len(items)} products, {len(sample)} distinct queries, torch threads {args.threads}")

    plain = PlainBm25s([i.title for i in items])
    query_vectors = dict(zip(sample, encoder.encode(sample), strict=True))
    baselines = {
        "bm25s-only (titles)": timed(lambda q: top_k(plain.scores(q)), sample),
        "exact scan (pre-encoded)": timed(lambda q: top_k(exact.all_scores(query_vectors[q])), sample),
    }
    cold = HybridSearcher(lexical, hnsw, encoder, search.model_copy(update={"query_vector_cache": 0}))
    warm = HybridSearcher(lexical, hnsw, encoder, search)
    for query in sample:
        warm.query_vector(query)
    service = SearchService(cold, CatalogSnapshot.from_items(items), np.zeros(len(items), np.float32))
    methods = {
        "query encoding only": timed(lambda q: encoder.encode([q]), sample),
        "bm25 (ours)": timed(cold.lexical_candidates, sample),
        "dense (HNSW)": timed(cold.semantic_candidates, sample),
        "hybrid rrf (HNSW)": timed(lambda q: cold.search(q, TOP, None, "rrf"), sample),
        "default blend (HNSW)": timed(lambda q: cold.search(q, TOP), sample),
        "default, repeated query": timed(lambda q: warm.search(q, TOP), sample),
        "service.search (+facets)": timed(lambda q: service.search(q, TOP), sample),
    }
    if args.trained is not None:
        methods.update(learned_rows(args.trained, ws, settings, cold, items, sample))
    base99 = percentiles(baselines["bm25s-only (titles)"])[2]
    exact99 = percentiles(baselines["exact scan (pre-encoded)"])[2]
    print(f"\n{'method':38} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} | p99 / bm25s-only | p99 / exact scan")
    for name, ms in {**baselines, **methods}.items():
        p50, p95, p99 = percentiles(ms)
        print(f"{name:38} {p50:8.2f} {p95:8.2f} {p99:8.2f} | {p99 / base99:16.1f} | {p99 / exact99:16.1f}")

    print("\nlexical backends over titles (quality on all judged queries, latency on the sample)")
    ids = [i.item_id for i in items]
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
    backends: dict[str, Callable[[str], list[int]]] = {
        "bm25s (plain tokenizer)": lambda q: top_k(plain.scores(q)).tolist(),
        "bm25s + ShopFusion analysis": lambda q: top_k(lexical.scores(q)).tolist(),
    }
    if importlib.util.find_spec("tantivy"):
        backends["tantivy (en_stem)"] = Tantivy([i.title for i in items]).top
    else:
        print("tantivy: SKIPPED (pip install tantivy, or shopfusion[dev])")
    print(f"{'backend':30} {'nDCG@10':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, run in backends.items():
        scores = Scores()
        for qid in judged:
            scores.add([ids[p] for p in run(queries[qid])], qrels[qid], TOP)
        p50, _, p99 = percentiles(timed(run, sample))
        print(f"{name:30} {scores.report(TOP)['ndcg@10']:8.4f} {p50:8.2f} {p99:8.2f}")


if __name__ == "__main__":
    main()
