"""The storefront in a real headless Chromium: search, open a product, see the 'for you' panel react."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian package `chromium`); .ci/run installs it"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")


def test_shopper_journey(server: str, tmp_path: Path) -> None:
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page()
        page.goto(server)
        assert page.locator("h1").inner_text() == "Popular right now"
        page.get_by_label("Search products").fill("porcelain teapot")
        page.keyboard.press("Enter")
        page.wait_for_url("**/?q=porcelain+teapot")
        first = page.locator("section .card").first
        assert "Porcelain teapot" in first.inner_text() and "Why:" in first.inner_text()
        first.locator("a.title").click()
        page.wait_for_url("**/product/A9")
        assert "Similar items" in page.content()
        page.goto(server)
        assert "Based on the 1 product(s) you looked at." in page.locator("#you").inner_text()
        page.screenshot(path=str(tmp_path / "storefront.png"), full_page=True)
        browser.close()
