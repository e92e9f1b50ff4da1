"""Learned search trained by `eval search --train-*` and `train search` on a generated shop whose shoppers use
words no title has: training must lift held-out queries above the untrained methods, every stage is reported,
and the engine serves what it kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfusion.evaluate.search_eval import run_search_eval
from shopfusion.workspace import Workspace
from tests.search.synthetic import FAST_TRAINING, built_shop, write_shop


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("learned")
    files = write_shop(root / "data", train_colours=4, types=6, brands=3)
    ws = Workspace.init(root / "ws")
    ws.config_path.write_text(FAST_TRAINING)
    run_search_eval(
        products=files["products"],
        queries=files["test_queries"],
        qrels=files["test_qrels"],
        train_queries=files["train_queries"],
        train_qrels=files["train_qrels"],
        workspace=ws.root,
        json_out=root / "out.json",
    )
    return json.loads((root / "out.json").read_text())


def test_training_lifts_held_out_queries_above_untrained_methods(report: dict[str, object]) -> None:
    methods = report["methods"]
    assert isinstance(methods, dict)
    untrained = max(methods[m]["ndcg@10"] for m in ("bm25", "dense", "hybrid", "blend"))
    assert methods["dense-finetuned"]["ndcg@10"] > untrained + 0.1
    assert {"+ltr", "shopfusion"} <= set(methods)
    assert methods["shopfusion"]["ndcg@10"] >= untrained


def test_training_report_is_written(report: dict[str, object]) -> None:
    training = report["training"]
    assert isinstance(training, dict)
    validation = training["bi_encoder"]["validation_ndcg"]
    assert max(validation[1:]) > validation[0]  # validated on train queries the encoder did not learn from
    assert training["neural_queries"] + training["ranker_queries"] == training["train_queries"]


def test_train_search_is_served_by_the_engine(tmp_path: Path) -> None:
    """`train search` on a built workspace: the engine then ranks with the learned pipeline (when training
    judged it better than the untrained blend), and its answers carry the learned explanation."""
    from shopfusion.build.train_search import train_search
    from shopfusion.catalog.benchmarks import load_qrels, load_queries
    from shopfusion.engine import Engine
    from shopfusion.metrics import ndcg_at_k

    ws, files = built_shop(tmp_path)
    queries, qrels = load_queries(files["test_queries"]), load_qrels(files["test_qrels"])

    def mean_ndcg(engine: Engine) -> float:
        ranked = {q: [r.item_id for r in engine.search(text, 10)] for q, text in queries.items()}
        return sum(ndcg_at_k(ranked[q], qrels[q], 10) for q in queries) / len(queries)

    untrained = mean_ndcg(Engine.open(ws.root))
    report = train_search(ws, files["train_queries"], files["train_qrels"], log=lambda _: None)
    after = Engine.open(ws.root)
    assert (after.search_service.learned is not None) == report["used"]
    if report["used"]:
        first = after.search(next(iter(queries.values())), 3)
        assert first[0].signals["ranker"] == "learned" and first[0].reason
        assert mean_ndcg(after) > untrained
