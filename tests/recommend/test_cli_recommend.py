"""`shopfusion recommend` surfaces and bad input on a built workspace (the shared generated one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopfusion.cli import app
from shopfusion.workspace import Workspace

runner = CliRunner()


@pytest.mark.slow
def test_recommend_surfaces_and_bad_input(built_workspace: Path) -> None:
    ws = str(built_workspace)

    def results(*args: str) -> list[dict[str, object]]:
        result = runner.invoke(app, ["recommend", *args, "-w", ws, "--json"])
        assert result.exit_code == 0, result.output
        return list(json.loads(result.output)["results"])

    together = results("--item", "A8", "--complements", "--k", "3")
    assert together and "A8" not in {r["item_id"] for r in together}
    assert all(r["reason"] and r["signals"]["contributions"] for r in together)  # type: ignore[index]
    stranger = results("--user", "never-seen", "--category", "Home", "--k", "3")
    assert stranger and all(str(r["category"]).startswith("Home") for r in stranger)
    assert len(results("--session", "A1,unknown-item", "--k", "4")) == 4
    for bad in (["--item", "NOPE"], ["--user", "1", "--complements"], ["--user", "1", "--item", "A1"]):
        assert runner.invoke(app, ["recommend", *bad, "-w", ws]).exit_code == 2
    assert runner.invoke(app, ["recommend", "--user", "1", "--k", "0", "-w", ws]).exit_code != 0


@pytest.mark.slow
def test_train_recommend_switches_to_a_new_version(built_workspace: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(built_workspace, ws)
    before = Workspace.open(ws).current_version
    built = json.loads((Workspace.open(ws).artifacts_dir / "manifest.json").read_text())
    assert built["recommend"]["method"] in ("learned", "weighted", "rrf")  # a build records it too
    result = runner.invoke(app, ["train", "recommend", "-w", str(ws), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["version"] != before and Workspace.open(ws).current_version == manifest["version"]
    assert manifest["recommend"]["method"] in ("learned", "weighted", "rrf")
    served = runner.invoke(app, ["recommend", "--session", "A1,A2", "--k", "3", "-w", str(ws), "--json"])
    assert served.exit_code == 0 and json.loads(served.output)["results"]
    empty = runner.invoke(app, ["train", "recommend", "-w", str(tmp_path / "unbuilt")])
    assert empty.exit_code == 2
