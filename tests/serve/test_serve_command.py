from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from shopfusion.cli import app


@pytest.mark.slow
def test_serve_answers_over_http(server: str) -> None:
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    assert httpx.get(f"{server}/docs").status_code == 200
    assert httpx.get(f"{server}/search", params={"q": "teapot"}).json()["results"]  # --demo: anonymous read
    assert httpx.post(f"{server}/events", json={}).status_code == 401


def test_keys_commands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    runner.invoke(app, ["init", "-w", ws])
    created = runner.invoke(app, ["keys", "create", "shop", "--scope", "read", "--scope", "write", "-w", ws])
    assert created.exit_code == 0 and created.output.startswith("sf_")
    key_id = created.output.split("_")[1]
    listed = runner.invoke(app, ["keys", "list", "-w", ws]).output
    assert key_id in listed and "scopes=read,write" in listed and created.output.strip() not in listed
    assert runner.invoke(app, ["keys", "create", "x", "--scope", "root", "-w", ws]).exit_code == 2
    assert runner.invoke(app, ["keys", "revoke", key_id, "-w", ws]).exit_code == 0
    assert key_id not in runner.invoke(app, ["keys", "list", "-w", ws]).output
