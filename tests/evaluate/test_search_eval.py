"""Search evaluation: metric functions against hand-computed values, input formats, and the command's contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from shopfusion.encoders import CachedEncoder, EmbeddingCache
from shopfusion.evaluate import search_eval
from shopfusion.evaluate.search_eval import learn_blend_weights, run_search_eval
from shopfusion.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from shopfusion.rank.candidates import Candidates
from shopfusion.settings import SearchSettings
from shopfusion.workspace import Workspace
from tests.conftest import HashingEncoder

GRADES = {"a": 2.0, "b": 1.0, "c": 0.0, "d": 1.5}


def test_ndcg_hand_computed() -> None:
    ranked = ["c", "a", "x", "b"]
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 2 / math.log2(2) + 1.5 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, GRADES, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["a", "d", "b"], GRADES, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["c", "x"], GRADES, 2) == 0.0


def test_recall_and_mrr_hand_computed() -> None:
    ranked = ["c", "a", "x", "b"]
    assert recall_at_k(ranked, GRADES, 100) == pytest.approx(2 / 3)  # c has grade 0: not relevant
    assert recall_at_k(ranked, GRADES, 2) == pytest.approx(1 / 3)
    assert mrr_at_k(ranked, GRADES, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(ranked, GRADES, 1) == 0.0


PRODUCTS = """item_id,title,brand,description
p1,Cordless drill 18 volt,Ryobi,Drill and driver kit
p2,Hammer drill corded,Bosch,For masonry
p3,Garden hose 50 ft,Flexzilla,Kink free hose
p4,Hose nozzle,Flexzilla,Eight spray patterns
p5,Kitchen faucet chrome,Delta,Pull down sprayer
p6,Bathroom faucet,Delta,Two handle
"""
QUERIES = "query_id\tquery\nq1\tcordless drill\nq2\tgarden hose\nq3\tkitchen faucet\nq4\tnothing judged\n"
QRELS = "query_id\titem_id\tgrade\nq1\tp1\t2\nq1\tp2\t1\nq2\tp3\t2\nq2\tp4\t0.5\nq3\tp5\t2\nq4\tp6\t0\n"


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in (("products.csv", PRODUCTS), ("queries.tsv", QUERIES), ("qrels.tsv", QRELS)):
        (tmp_path / name).write_text(text)

    def fake_encoder(ws: Workspace, settings: object) -> CachedEncoder:
        return CachedEncoder(HashingEncoder(), EmbeddingCache(ws.embedding_cache_path))

    monkeypatch.setattr(search_eval, "make_encoder", fake_encoder)
    return tmp_path


def test_report_contract(bench: Path) -> None:
    out = bench / "out" / "report.json"
    run_search_eval(
        products=bench / "products.csv",
        queries=bench / "queries.tsv",
        qrels=bench / "qrels.tsv",
        json_out=out,
        k=5,
        workspace=bench / "ws",
    )
    report = json.loads(out.read_text())
    assert {"bm25", "dense", "hybrid", "blend"} <= set(report["methods"]) and report["default"] in report["methods"]
    for metrics in report["methods"].values():
        assert set(metrics) == {"ndcg@5", "recall@100", "mrr@5", "queries"}
        assert metrics["queries"] == 3  # q4 has no positive grade
    assert report["methods"]["bm25"]["mrr@5"] == 1.0  # each query's best item comes first
    assert report["default_pipeline"]["weights_from"] == "settings"


def test_weights_are_learned_from_train_judgements_only(bench: Path) -> None:
    # Train judgements that reward the dense side only: the learned weights must follow them.
    (bench / "train_q.tsv").write_text("t1\tdrill\nt2\those\n")
    (bench / "train_r.tsv").write_text("t1\tp2\t2\nt2\tp4\t2\n")
    out = bench / "report.json"
    run_search_eval(
        products=bench / "products.csv",
        queries=bench / "queries.tsv",
        qrels=bench / "qrels.tsv",
        json_out=out,
        train_queries=bench / "train_q.tsv",
        train_qrels=bench / "train_r.tsv",
        workspace=bench / "ws",
    )
    report = json.loads(out.read_text())
    assert report["default_pipeline"]["weights_from"] == "2 train queries"
    assert report["default_pipeline"]["fusion"] == "blend"


def test_learned_weights_follow_the_train_judgements() -> None:
    lex = Candidates(np.array([1, 0]), np.array([5.0, 1.0]))
    sem = Candidates(np.array([0, 1]), np.array([0.9, 0.1]))
    retrieved = {"t": (lex, sem)}
    ids = ["semantic-favourite", "lexical-favourite"]  # a tie goes to position 0: lexical must win outright
    base = SearchSettings()
    semantic = learn_blend_weights(retrieved, {"t": {"semantic-favourite": 1.0}}, ids, base, 1)
    lexical = learn_blend_weights(retrieved, {"t": {"lexical-favourite": 1.0}}, ids, base, 1)
    assert semantic.lexical_weight < semantic.semantic_weight
    assert lexical.lexical_weight > lexical.semantic_weight
