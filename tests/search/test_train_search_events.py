"""`shopfusion train search` from behaviour events: searches followed by clicks and purchases train learned
search without any judgement file, and too few of them leave search untrained with a message saying so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shopfusion.catalog.benchmarks import load_qrels, load_queries
from shopfusion.cli import app
from tests.search.synthetic import built_shop, search_events

runner = CliRunner()


def train(*args: str) -> tuple[int, str]:
    """Exit code, and stdout and stderr together (progress bars go to stderr: `--json` reads stdout alone)."""
    result = runner.invoke(app, ["train", "search", *args])
    return result.exit_code, result.output


def train_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["train", "search", *args, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def workspace_copy(built_workspace: Path, tmp_path: Path) -> Path:
    """The session's built workspace, copied so a test's training does not change it for the others."""
    ws = tmp_path / "ws"
    shutil.copytree(built_workspace, ws)
    return ws


def test_judgement_files_go_together(tmp_path: Path) -> None:
    code, out = train("--queries", str(tmp_path / "q.tsv"), "-w", str(tmp_path))
    assert code == 2 and "--queries and --qrels go together" in out


@pytest.mark.slow
def test_too_few_events_leave_search_untrained_and_say_so(built_workspace: Path, tmp_path: Path) -> None:
    ws = workspace_copy(built_workspace, tmp_path)
    events = tmp_path / "events.csv"
    events.write_text(
        "type,timestamp,session_id,item_id,query,value\n"
        "search,2024-03-01T10:00:00,s1,,tea cup,\n"
        "click,2024-03-01T10:01:00,s1,A8,,\n"
        "purchase,2024-03-01T10:02:00,s1,A9,,\n"
        "search,2024-03-01T11:00:00,s2,,running shoes,\n"
        "click,2024-03-01T11:01:00,s2,A1,,\n"
        "rating,2024-03-01T11:02:00,s2,A1,,\n"  # a rating without a value: rejected, the rest kept
    )
    code, out = train("--events", str(events), "-w", str(ws))
    assert code == 2, out
    assert "1 rejected" in out and "2 judged queries (3 query-item pairs, 3 from events)" in out
    assert "too few" in out and "--events" in out and "--queries/--qrels" in out

    # without --events or judgement files, the store's events are read
    assert runner.invoke(app, ["ingest", "events", str(events), "-w", str(ws)]).exit_code == 0
    report = train_json("-w", str(ws))
    assert report["learned_validation_ndcg"] is None and report["used"] is False
    assert report["judgements"]["from_events"] == 3 and report["judgements"]["events"]["searches"] == 2


@pytest.mark.slow
def test_an_events_file_with_other_column_names_is_mapped(built_workspace: Path, tmp_path: Path) -> None:
    """--mapping / --map as for `ingest events`: without them the file's rows name no event type and count for
    nothing; with them they give the judgements."""
    ws = workspace_copy(built_workspace, tmp_path)
    events = tmp_path / "log.csv"
    events.write_text(
        "kind,when,visit,sku,search_text\n"
        "search,2024-03-01T10:00:00,s1,,tea cup\n"
        "click,2024-03-01T10:01:00,s1,A8,\n"
        "search,2024-03-01T11:00:00,s2,,running shoes\n"
        "purchase,2024-03-01T11:01:00,s2,A1,\n"
    )
    unmapped = train_json("--events", str(events), "-w", str(ws))
    assert unmapped["judgements"]["from_events"] == 0 and unmapped["judgements"]["events_file"]["loaded"] == 0

    columns = tmp_path / "mapping.toml"
    columns.write_text('[columns]\ntimestamp = "when"\nsession_id = "visit"\nitem_id = "sku"\n')
    mapped = train_json(
        "--events",
        str(events),
        "--mapping",
        str(columns),
        "--map",
        "type=kind",
        "--map",
        "query=search_text",
        "-w",
        str(ws),
    )
    assert mapped["judgements"]["events_file"]["loaded"] == 4
    assert mapped["judgements"]["from_events"] == 2 and mapped["judgements"]["events"]["searches"] == 2


def test_training_only_from_search_events_lifts_held_out_queries(tmp_path: Path) -> None:
    """The generated shop's train queries exist only as searches followed by clicks and purchases: trained on
    them through the CLI, the engine ranks held-out queries (other colours) better than untrained."""
    from shopfusion.engine import Engine
    from shopfusion.metrics import ndcg_at_k

    ws, files = built_shop(tmp_path)
    events = tmp_path / "events.csv"
    search_events(load_queries(files["train_queries"]), load_qrels(files["train_qrels"])).to_csv(events, index=False)
    queries, qrels = load_queries(files["test_queries"]), load_qrels(files["test_qrels"])

    def mean_ndcg(engine: Engine) -> float:
        ranked = {q: [r.item_id for r in engine.search(text, 10)] for q, text in queries.items()}
        return sum(ndcg_at_k(ranked[q], qrels[q], 10) for q in queries) / len(queries)

    untrained = mean_ndcg(Engine.open(ws.root))
    report = train_json("--events", str(events), "-w", str(ws.root))
    judged = report["judgements"]
    assert judged["files"] == {"queries": 0, "pairs": 0} and judged["queries"] == len(
        load_queries(files["train_queries"])
    )
    assert judged["events"]["attributed"] < judged["events"]["actions"]  # the late clicks did not count
    assert report["bi_encoder"]["co_interaction_pairs"] > 0
    assert report["used"], report
    after = Engine.open(ws.root)
    assert after.search_service.learned is not None
    assert mean_ndcg(after) > untrained

    # a later run with too little to learn from fails and keeps the trained search in use
    few = tmp_path / "few.csv"
    few.write_text("type,timestamp,session_id,item_id,query\nsearch,2024-03-01T10:00:00,s1,,x\n")
    code, out = train("--events", str(few), "-w", str(ws.root))
    assert code == 2 and "stays in use" in out, out
    assert Engine.open(ws.root).search_service.learned is not None


def test_generated_events_give_the_generated_grades() -> None:
    """The end-to-end test's events mean what its judgement files say: purchases for the colour asked for
    (grade 3, file grade 2) and clicks for the rest of the product type (grade 1)."""
    from shopfusion.search.judgements import judgements_from_events

    queries = {"q": "red zorvak"}
    qrels = {"q": {"i000": 2.0, "i001": 2.0, "i010": 1.0}}
    found = judgements_from_events(search_events(queries, qrels), {"i000", "i001", "i010"})
    assert found.qrels == {"event:red zorvak": {"i000": 3.0, "i001": 3.0, "i010": 1.0}}
