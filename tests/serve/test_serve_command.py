from __future__ import annotations

import os

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


@pytest.mark.slow
def test_demo_server_shows_examples_then_the_url(built_workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`make demo` runs `serve --demo`: on a built workspace it reuses it, prints examples, then the URL."""
    import shutil
    import socket
    import subprocess
    import sys

    workspace = tmp_path / "ws"
    shutil.copytree(built_workspace, workspace)
    versions = sorted((workspace / "models").iterdir())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "shopfusion", "serve", "--demo", "-w", str(workspace), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "ShopFusion on" in line:
                break
        output = "".join(lines)
        assert "3. search" in output and "4. recommendations" in output and "1. ingest" not in output
        assert f"http://127.0.0.1:{port}" in lines[-1]
        assert sorted((workspace / "models").iterdir()) == versions  # reused, not rebuilt
    finally:
        process.terminate()
        process.wait(timeout=10)
