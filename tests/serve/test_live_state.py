"""What a server learns between builds survives every model swap and a restart: events posted while a retrain
runs, events since the last build, and erasures, all through the HTTP API."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopfusion.serve.app import create_app
from shopfusion.serve.auth import KEYS_FILE, KeyStore, Scope
from shopfusion.workspace import Workspace

RETRAIN_THREAD = "shopfusion-retrain"
PURCHASES = {
    "events": [
        {"type": "purchase", "timestamp": "2024-04-01T10:00:00", "user_id": "shopper-42", "item_id": item}
        for item in ("A8", "A9")
    ]
}


@pytest.fixture
def workspace(built_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(built_workspace, copy)
    return copy


@pytest.fixture
def keys(workspace: Path) -> dict[str, dict[str, str]]:
    store = KeyStore(workspace / KEYS_FILE)
    return {scope.value: {"X-API-Key": store.create(scope.value, [scope])} for scope in Scope}


def top(client: TestClient, keys: dict[str, dict[str, str]], user: str) -> list[str]:
    response = client.get(f"/recommendations/user/{user}", headers=keys["read"])
    assert response.status_code == 200
    return [r["item_id"] for r in response.json()["results"]]


def wait_for_retrain(client: TestClient, keys: dict[str, dict[str, str]]) -> dict[str, Any]:
    for _ in range(1200):
        state: dict[str, Any] = client.get("/admin/models", headers=keys["admin"]).json()
        if not state["retrain"]["running"]:
            return state
        time.sleep(0.1)
    raise AssertionError("the retrain did not finish")


def test_events_posted_while_a_retrain_runs_are_served_after_its_swap(
    workspace: Path, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(workspace))
    cold = top(client, keys, "shopper-42")
    built, resume = threading.Event(), threading.Event()
    activate = Workspace.activate

    def activate_when_resumed(ws: Workspace, version: str) -> None:
        if threading.current_thread().name == RETRAIN_THREAD:  # the new version has read the store: hold it
            built.set()
            assert resume.wait(120)
        activate(ws, version)

    monkeypatch.setattr(Workspace, "activate", activate_when_resumed)
    assert client.post("/admin/retrain", headers=keys["admin"]).status_code == 202
    assert built.wait(600)
    assert client.post("/events", json=PURCHASES, headers=keys["write"]).status_code == 200
    assert top(client, keys, "shopper-42") != cold  # counted at once by the version served now
    resume.set()
    state = wait_for_retrain(client, keys)
    assert state["retrain"]["last_error"] is None and state["current"] == state["versions"][-1] != state["versions"][0]
    after = top(client, keys, "shopper-42")  # the new version did not see the events: they are replayed into it
    assert after != top(client, keys, "someone-else") and set(after[:2]) & {"A7", "A10"}, after


def test_events_since_the_build_are_served_after_a_restart(workspace: Path, keys: dict[str, dict[str, str]]) -> None:
    client = TestClient(create_app(workspace))
    cold = top(client, keys, "shopper-42")
    assert client.post("/events", json=PURCHASES, headers=keys["write"]).status_code == 200
    warm = top(client, keys, "shopper-42")
    assert warm != cold
    restarted = TestClient(create_app(workspace))  # no build in between
    assert top(restarted, keys, "shopper-42") == warm


def test_an_erased_user_stays_erased_after_a_rollback_to_a_version_built_with_them(
    workspace: Path, keys: dict[str, dict[str, str]]
) -> None:
    client = TestClient(create_app(workspace))
    built_with_them = client.get("/admin/models", headers=keys["admin"]).json()["current"]
    assert top(client, keys, "1") != top(client, keys, "never-seen")
    assert client.delete("/users/1", headers=keys["admin"]).json()["retraining"] is True
    assert top(client, keys, "1") == top(client, keys, "never-seen")
    assert len(wait_for_retrain(client, keys)["versions"]) == 2
    rolled = client.post(f"/admin/models/{built_with_them}/activate", headers=keys["admin"])
    assert rolled.status_code == 200 and rolled.json()["current"] == built_with_them
    assert top(client, keys, "1") == top(client, keys, "never-seen")
    restarted = TestClient(create_app(workspace))  # still on the version built with them
    assert top(restarted, keys, "1") == top(restarted, keys, "never-seen")


def test_an_erased_user_stays_erased_after_a_restart_before_the_next_build(
    workspace: Path, keys: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    activate = Workspace.activate

    def fail_in_retrain(ws: Workspace, version: str) -> None:
        if threading.current_thread().name == RETRAIN_THREAD:
            raise OSError("disk full")
        activate(ws, version)

    monkeypatch.setattr(Workspace, "activate", fail_in_retrain)
    client = TestClient(create_app(workspace))
    assert top(client, keys, "1") != top(client, keys, "never-seen")
    assert client.delete("/users/1", headers=keys["admin"]).status_code == 200
    assert "disk full" in wait_for_retrain(client, keys)["retrain"]["last_error"]  # still on the version with them
    restarted = TestClient(create_app(workspace))
    assert top(restarted, keys, "1") == top(restarted, keys, "never-seen")
