"""The command line end to end on generated data, and `shopfusion demo` on the shipped slice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopfusion.cli import app
from shopfusion.cli.demo import DEMO_DATA

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_has_help() -> None:
    out = run("--help")
    for command in ("init", "ingest", "build", "stats", "search", "recommend", "eval", "demo"):
        assert command in out
    for command in ("ingest", "build", "search", "recommend", "eval search", "eval recommend"):
        assert "Usage" in run(*command.split(), "--help")


@pytest.mark.slow
def test_ingest_build_search_recommend(
    tmp_path: Path, items_csv: Path, transactions_csv: Path, retail_mapping: Path
) -> None:
    ws = str(tmp_path / "ws")
    run("init", "-w", ws)
    out = run("ingest", "items", str(items_csv), "-w", ws, "--map", "category=category", "--const", "currency=EUR")
    assert "10 loaded" in out and "0 rejected" in out
    report = json.loads(run("ingest", "events", str(transactions_csv), "-w", ws, "-m", str(retail_mapping), "--json"))
    assert report["rejected"] == 2 and set(report["reject_reasons"]) == {
        "quantity: purchase quantity must be > 0",
        "user_id: user_id or session_id is required (anonymous events need a session_id)",
    }
    first = json.loads(run("build", "-w", ws, "--json"))
    assert first["items"] == 10 and first["encoded"] == 10
    second = json.loads(run("build", "-w", ws, "--json"))
    assert (second["encoded"], second["from_cache"]) == (0, 10)  # unchanged items cost nothing

    stats = json.loads(run("stats", "-w", ws, "--json"))
    assert stats["store"]["items"] == 10 and stats["build"]["items"] == 10

    hits = json.loads(run("search", "teapot for tea", "-w", ws, "--json"))["results"]
    assert hits[0]["item_id"] in {"A8", "A9"}
    assert {"lexical_score", "semantic_score"} <= set(hits[0]["signals"])

    for_user = json.loads(run("recommend", "--user", "1", "-w", ws, "--json"))["results"]
    assert for_user and all(r["reason"] for r in for_user)
    # user 1 buys from the 'home' cluster: their recommendations start there
    assert for_user[0]["item_id"] in {"A7", "A8", "A9", "A10"}
    similar = json.loads(run("recommend", "--item", "A1", "-w", ws, "--json"))["results"]
    assert "A1" not in [r["item_id"] for r in similar]
    session = json.loads(run("recommend", "--session", "A8,A9", "-w", ws, "--json"))["results"]
    assert {"A8", "A9"}.isdisjoint(r["item_id"] for r in session)


def test_errors_are_clear(tmp_path: Path, items_csv: Path) -> None:
    result = runner.invoke(app, ["search", "x", "-w", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "shopfusion init" in result.output
    result = runner.invoke(app, ["ingest", "items", str(items_csv), "-w", str(tmp_path / "ws"), "--map", "title=nope"])
    assert result.exit_code == 2 and "nothing loaded" in result.output and "'nope'" in result.output
    result = runner.invoke(app, ["build", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2 and "no items" in result.output


@pytest.mark.slow
def test_demo_runs_on_the_shipped_slice(tmp_path: Path) -> None:
    assert (DEMO_DATA / "transactions.csv.gz").exists()
    out = run("demo", "-w", str(tmp_path / "ws"))
    assert "rejected" in out and "search: christmas decorations" in out
    assert "popular right now" in out  # the unknown visitor's cold start
