"""Storefront and admin pages: rendered by the API process, reacting to what the shopper looks at."""

from __future__ import annotations

import json
import re
import shutil
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient

from shopfusion.serve.app import create_app
from shopfusion.serve.auth import KEYS_FILE, KeyStore, Scope
from shopfusion.workspace import Workspace


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


def _results(html: str) -> list[str]:
    return re.findall(r'data-item="([^"]+)"', html.split('<aside id="you">')[0])


def _links(html: str, css_class: str) -> dict[str, str]:
    """Link text (tags stripped, spaces collapsed) → href, for the links with this class attribute."""
    found = re.findall(rf'<a class="{css_class}" href="([^"]+)"[^>]*>(.*?)</a>', html, re.S)
    return {" ".join(re.sub(r"<[^>]+>", " ", text).split()): unescape(href) for href, text in found}


def test_facets_filter_the_results_and_come_off_again(built_workspace: Path, tmp_path: Path) -> None:
    client, _ = _client(built_workspace, tmp_path)
    page = client.get("/", params={"q": "shoes"}).text
    everything = _results(page)
    facets = re.findall(r'<a href="([^"]+)" data-facet="brand">(\w+) <span class="muted">(\d+)</span>', page)
    assert ("/?q=shoes&amp;filter=brand%3ATrail", "Trail", "2") in facets
    filtered = client.get("/?q=shoes&filter=brand%3ATrail").text
    assert _results(filtered) == ["A3", "A4"] and len(everything) > 2  # only Trail's items
    assert 'class="active" aria-current="true" data-facet="brand">Trail' in filtered
    chips = _links(filtered, "chip")
    assert list(chips) == ["brand: Trail ×"]
    assert _results(client.get(chips["brand: Trail ×"]).text) == everything  # the chip removes the filter
    both = client.get("/", params=[("q", "shoes"), ("filter", "brand:Trail"), ("filter", "in_stock:true")]).text
    assert set(_links(both, "chip")) == {"brand: Trail ×", "in stock ×"} and "Clear all" in both
    understood = client.get("/", params={"q": "socks under 10"}).text
    assert "Showing results for “socks” · price up to 10" in understood
    assert set(_results(understood)) == {"A5", "A10", "A8"}  # the price bound became a filter: all under 10
    bad = client.get("/", params={"q": "shoes", "filter": "colour:red"})
    assert bad.status_code == 422 and "unknown filter field" in bad.text


def test_for_you_panel_follows_clicks(built_workspace: Path, tmp_path: Path) -> None:
    client, workspace = _client(built_workspace, tmp_path)
    before = _panel(client.get("/").text)
    product = client.get("/product/A8")
    assert product.status_code == 200 and "Ceramic tea cup" in product.text and "Similar items" in product.text
    after = _panel(client.get("/").text)
    assert after != before and "A8" not in after  # the panel now works from the viewed item
    from shopfusion.catalog.store import open_store

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
    version = Workspace.open(workspace).current_version
    assert f"<td>{version} ★ served</td>" in dashboard
    assert "No evaluation reports configured" in dashboard and "evaluation_reports" in dashboard


def test_dashboard_shows_evaluation_reports(built_workspace: Path, tmp_path: Path) -> None:
    client, workspace = _client(built_workspace, tmp_path)
    report = {
        "methods": {"bm25": {"ndcg@10": 0.41263, "queries": 50}, "blend": {"ndcg@10": 0.5, "queries": 50}},
        "default": "blend",
        "seconds": 8.1,
    }
    (workspace / "reports").mkdir()
    (workspace / "reports" / "search.json").write_text(json.dumps(report))
    config = Workspace.open(workspace).config_path
    config.write_text(config.read_text() + '\n[serve]\nevaluation_reports = ["reports/search.json", "gone.json"]\n')
    client.cookies.set("sf_admin", KeyStore(workspace / KEYS_FILE).create("ops", [Scope.ADMIN]))
    dashboard = client.get("/admin").text
    assert "<th>method</th><th>ndcg@10</th><th>queries</th>" in dashboard
    assert "<td>bm25</td><td>0.4126</td><td>50</td>" in dashboard
    assert "<td>blend (default)</td><td>0.5000</td>" in dashboard and "seconds 8.1" in dashboard
    assert "gone.json" in dashboard and "cannot read it (FileNotFoundError" in dashboard
    (workspace / "reports" / "search.json").write_text("[1, 2]")
    assert "cannot read it (TypeError" in client.get("/admin").text  # not a report: said so, no 500
