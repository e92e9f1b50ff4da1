"""Storefront and admin pages: rendered by the API process, reacting to what the shopper looks at."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from shopfusion.serve.app import create_app
from shopfusion.serve.auth import KEYS_FILE, KeyStore, Scope


def _client(built_workspace: Path, tmp_path: Path) -> tuple[TestClient, Path]:
    workspace = tmp_path / "ws"
    shutil.copytree(built_workspace, workspace)
    return TestClient(create_app(workspace, anonymous_read=True)), workspace


def _panel(html: str) -> list[str]:
    return re.findall(r'data-item="([^"]+)"', html.split('<aside id="you">')[1])


def test_search_page_shows_results_with_reasons(built_workspace: Path, tmp_path: Path) -> None:
    client, _ = _client(built_workspace, tmp_path)
    page = client.get("/", params={"q": "teapot"})
    assert page.status_code == 200
    assert "Results for “teapot”" in page.text and "Porcelain teapot" in page.text
    assert 'class="why"' in page.text
    assert "Popular right now" in client.get("/").text


def test_for_you_panel_follows_clicks(built_workspace: Path, tmp_path: Path) -> None:
    client, workspace = _client(built_workspace, tmp_path)
    before = _panel(client.get("/").text)
    product = client.get("/product/A8")
    assert product.status_code == 200 and "Ceramic tea cup" in product.text and "Similar items" in product.text
    after = _panel(client.get("/").text)
    assert after != before and "A8" not in after  # the panel now works from the viewed item
    from shopfusion.catalog.store import open_store
    from shopfusion.workspace import Workspace

    events = open_store(Workspace.open(workspace).store_url()).events_frame()
    views = events[events["session_id"].notna()]
    assert views[["type", "item_id"]].values.tolist() == [["view", "A8"]]  # the click is recorded as an event
    assert client.get("/product/NOPE").status_code == 404


def test_admin_needs_an_admin_key(built_workspace: Path, tmp_path: Path) -> None:
    client, workspace = _client(built_workspace, tmp_path)
    store = KeyStore(workspace / KEYS_FILE)
    reader, admin = store.create("shop", [Scope.READ]), store.create("ops", [Scope.ADMIN])
    assert "Admin sign-in" in client.get("/admin").text
    assert client.post("/admin/login", data={"key": reader}).status_code == 401
    signed_in = client.post("/admin/login", data={"key": admin})
    assert signed_in.status_code == 200 and "Dashboard" in signed_in.text
    client.get("/search", params={"q": "tea"})
    dashboard = client.get("/admin").text
    assert "/search" in dashboard and "events" in dashboard and "ops" in dashboard
