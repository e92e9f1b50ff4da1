"""A real `shopfusion serve` process on a free loopback port, over a private copy of the built workspace."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


@pytest.fixture
def server(built_workspace: Path, tmp_path: Path) -> Iterator[str]:
    workspace = tmp_path / "ws"
    shutil.copytree(built_workspace, workspace)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "shopfusion", "serve", "--demo", "-w", str(workspace), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        else:
            pytest.fail(f"server did not start: {process.stderr.read().decode() if process.stderr else ''}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
