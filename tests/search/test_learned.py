"""Learned search trained by `eval search --train-*` on a generated shop whose shoppers use words no title has:
training must lift held-out queries above the untrained methods, and every stage is reported."""

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


def test_explanations_name_the_strongest_signals_and_sum_to_the_score() -> None:
    import numpy as np

    from shopfusion.rank.ltr import LambdaMartRanker, RankingData
    from shopfusion.search.learned import FIRST_STAGE, LearnedHit, LearnedSearch

    rng = np.random.default_rng(0)
    width = len(FIRST_STAGE)

    def queries(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        parts = []
        for _ in range(n):
            x = rng.random((20, width)).astype(np.float32)
            parts.append((x, np.where(x[:, FIRST_STAGE.index("tuned")] > 0.7, 2.0, 0.0)))
        return parts

    ranker = LambdaMartRanker(FIRST_STAGE, min_data_in_leaf=10).fit(
        RankingData.concat(queries(60), width), RankingData.concat(queries(20), width)
    )
    x = queries(1)[0][0]
    hits = LearnedSearch._hits(np.arange(20), ranker.predict(x), x, ranker)
    for hit in hits:  # computed on demand, one hit at a time, and still exact
        assert sum(hit.contributions.values()) == pytest.approx(hit.score, abs=1e-6)
    best = max(hits, key=lambda h: h.score)
    assert max(best.contributions, key=lambda name: best.contributions[name]) == "tuned"

    named = LearnedHit(7, 1.2, lambda: {"tuned": 0.9, "phrase": 0.4, "prior": -0.2, "bias": 0.1})
    assert (
        named.reason()
        == "close in meaning to what shoppers chose for such searches; the title contains the query as typed"
    )
    assert LearnedHit(8, 0.0).reason() == "ranked by the learned model"


def test_cross_encoder_scores_each_pair_once_when_memoised() -> None:
    import numpy as np

    from shopfusion.search.learned import LearnedSearch

    class CountingCross:
        def __init__(self) -> None:
            self.pairs = 0

        def scores(self, query: str, texts: list[str]) -> np.ndarray:
            self.pairs += len(texts)
            return np.array([float(len(t)) for t in texts], dtype=np.float32)

    class FakeSignals:
        texts = ("a", "bb", "ccc", "dddd")

    cross = CountingCross()
    learned = LearnedSearch(FakeSignals(), None, cross)  # type: ignore[arg-type]
    assert learned.cross_scores("q", [0, 1]).tolist() == [1.0, 2.0]
    assert learned.cross_scores("q", [1, 0]).tolist() == [2.0, 1.0]
    assert cross.pairs == 4  # serving: no memory between calls
    learned.memo = {}
    learned.cross_scores("q", [0, 1, 2])
    assert learned.cross_scores("q", [2, 3, 0]).tolist() == [3.0, 4.0, 1.0]
    assert cross.pairs == 4 + 3 + 1  # only item 3 was new
    learned.cross_scores("other query", [0])
    assert cross.pairs == 9


def test_train_search_is_served_by_the_engine(tmp_path: Path) -> None:
    """`train search` on a built workspace: the engine then ranks with the learned pipeline (when training
    judged it better than the untrained blend), and its answers carry the learned explanation."""
    from shopfusion.engine import Engine
    from shopfusion.evaluate.search_eval import load_qrels, load_queries
    from shopfusion.metrics import ndcg_at_k
    from shopfusion.pipeline import train_search

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


def test_fine_tuned_index_is_kept_for_an_unchanged_catalogue(tmp_path: Path) -> None:
    import numpy as np

    from shopfusion.search.learned import tuned_index

    class CountingEncoder:
        model_id, dim = "tuned@1", 4

        def __init__(self) -> None:
            self.encoded = 0

        def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
            self.encoded += len(texts)
            return np.eye(4, dtype=np.float32)[[len(t) % 4 for t in texts]]

    encoder = CountingEncoder()
    first = tuned_index(tmp_path, ["a", "bb", "ccc"], encoder, exact_max_items=10)
    again = tuned_index(tmp_path, ["a", "bb", "ccc"], encoder, exact_max_items=10)
    assert encoder.encoded == 3  # the second engine load read the kept index
    query = np.array([0, 1, 0, 0], dtype=np.float32)
    assert again.search(query, 1)[0].tolist() == first.search(query, 1)[0].tolist() == [0]
    tuned_index(tmp_path, ["a", "bb", "cccc"], encoder, exact_max_items=10)
    assert encoder.encoded == 6  # another catalogue: encoded and indexed again
