"""`shopfusion eval recommend`: the JSON contract on generated data and the metrics against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from shopfusion.evaluate.recommend_eval import intra_list_diversity, run_recommend_eval, score_lists
from shopfusion.metrics import ndcg_rows
from tests.conftest import HashingEncoder
from tests.recommend import synthetic


def test_metrics_by_hand() -> None:
    item_ids = np.array(["a", "b", "c", "d"], dtype=object)
    vectors = np.eye(4, dtype=np.float32)
    lists = {"u1": np.array([0, 1]), "u2": np.array([2, 3])}
    targets = {"u1": {"b"}, "u2": {"c", "d", "x"}}  # x: outside the catalogue, still counts
    m = score_lists(lists, targets, item_ids, vectors, 2)
    # u1: hit at rank 2 → recall 1/1, ndcg (1/log2 3) / 1; u2: 2 hits of min(3, 2) → recall 1, ndcg 1
    assert m["recall@2"] == pytest.approx(1.0)
    assert m["ndcg@2"] == pytest.approx((1 / np.log2(3) + 1.0) / 2)
    assert m["coverage"] == 1.0 and m["users"] == 2
    assert m["ild"] == pytest.approx(1.0)  # orthogonal items are maximally diverse


def test_intra_list_diversity_of_duplicates_and_singletons() -> None:
    vectors = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert intra_list_diversity([np.array([0, 1])], vectors) == pytest.approx(0.0)
    assert intra_list_diversity([np.array([0, 1, 2])], vectors) == pytest.approx(2 / 3)
    assert intra_list_diversity([np.array([2])], vectors) == 0.0


def test_vectorised_ndcg_matches_the_contract() -> None:
    import scipy.sparse as sp

    targets = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    ranked = np.array([[1, 0, 3], [2, 3, -1]])
    got = ndcg_rows(ranked, targets, np.array([2, 1]), 3)
    ideal = 1 + 1 / np.log2(3)
    assert got == pytest.approx([(1 + 1 / np.log2(4)) / ideal, 0.0])


@pytest.fixture
def bench(tmp_path: Path) -> dict[str, Path]:
    snapshot = synthetic.catalog()
    items = tmp_path / "items.csv"
    snapshot.frame[["item_id", "title", "price"]].to_csv(items, index=False)
    events = synthetic.events(60).rename(columns={"type": "event"})
    events["timestamp"] = events["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    paths = {"items": items, "train": tmp_path / "train.csv.gz", "test": tmp_path / "test.csv"}
    events.to_csv(paths["train"], index=False)
    # the test: for each user an item of their own cluster they have not bought yet (when one is left)
    rows = [{"user_id": "stranger", "item_id": "A1", "timestamp": "2024-03-01"}]
    for user, bought in events.groupby("user_id")["item_id"]:
        cluster = synthetic.SPORT if int(str(user)[1:]) % 2 == 0 else synthetic.HOME
        rows += [{"user_id": user, "item_id": i, "timestamp": "2024-03-01"} for i in cluster if i not in set(bought)][
            :1
        ]
    pd.DataFrame(rows).to_csv(paths["test"], index=False)
    return paths


def test_eval_writes_the_contract(bench: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    console = Console(record=True, width=160)
    run_recommend_eval(**bench, json_out=out, k=5, exclude_seen=True, console=console, encoder=HashingEncoder())
    report = json.loads(out.read_text())
    methods = report["methods"]
    users = pd.read_csv(bench["test"])["user_id"].nunique() - 1
    assert report["default"] in methods
    assert {"popularity", "repeat", "item_knn", "als", "ease", "content", "complements"} <= set(methods)
    for m in methods.values():
        assert set(m) == {"recall@5", "ndcg@5", "coverage", "ild", "users"}
        assert m["users"] == users  # the stranger is not known in train
        assert 0 <= m["ndcg@5"] <= 1 and 0 <= m["recall@5"] <= 1 and 0 <= m["coverage"] <= 1
    assert methods["repeat"]["recall@5"] == 0.0  # with --exclude-seen the user's own items are never shown
    # users shop within one of two clusters: CF must beat popularity by far
    assert methods["item_knn"]["ndcg@5"] > 0.5 > methods["popularity"]["ndcg@5"]
    assert methods[report["default"]]["ndcg@5"] >= 0.9 * max(m["ndcg@5"] for m in methods.values())
    assert f"{report['default']} (default)" in console.export_text()  # the table marks the one that served


def test_cli_eval_recommend(bench: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from shopfusion import cli
    from shopfusion.evaluate import recommend_eval

    monkeypatch.setattr(recommend_eval, "_default_encoder", lambda workspace: HashingEncoder())
    out = tmp_path / "cli.json"
    args = ["eval", "recommend", "--items", str(bench["items"]), "--train", str(bench["train"])]
    args += ["--test", str(bench["test"]), "--k", "3", "--json", str(out)]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert "recall@3" in report["methods"]["popularity"]
    assert report["exclude_seen"] is False and report["k"] == 3


def test_bench_splits_hold_out_the_last_item_and_the_next_period() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "make_rec_splits.py"
    spec = importlib.util.spec_from_file_location("make_rec_splits", path)
    assert spec is not None and spec.loader is not None
    splits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(splits)
    frame = pd.DataFrame(
        {"user_id": ["u", "u", "u", "v"], "item_id": ["a", "b", "c", "d"], "timestamp": ["2", "10", "1", "0"]}
    )
    train, test = splits.leave_last_out(frame)
    assert test[["user_id", "item_id"]].values.tolist() == [["u", "b"]]  # by position, not by text order
    assert sorted(train["item_id"]) == ["a", "c", "d"]  # single-interaction users stay in train
    dated = frame.assign(timestamp=["2011-09-30", "2011-10-02", "2011-11-01", "2011-10-31 23:00"])
    train, test = splits.next_period(dated, "2011-10-01", "2011-11-01")
    assert train["item_id"].tolist() == ["a"] and sorted(test["item_id"]) == ["b", "d"]
