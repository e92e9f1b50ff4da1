"""The storefront in a real headless Chromium: search, filter by a facet, open a product, see the 'for you'
panel react."""

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
        page.get_by_label("Search products").fill("shoes")
        page.keyboard.press("Enter")
        page.wait_for_url("**/?q=shoes")
        results = page.locator("section .card")
        everything = results.evaluate_all("cards => cards.map(c => c.dataset.item)")
        assert "Why:" in results.first.inner_text() and "Showing results for" in page.content()
        # apply a facet: only that brand's items remain, and the filter shows as a removable chip
        page.locator('.facets a[data-facet="brand"]', has_text="Trail").click()
        page.wait_for_url("**/?q=shoes&filter=brand%3ATrail")
        filtered = results.evaluate_all("cards => cards.map(c => c.dataset.item)")
        assert filtered == ["A3", "A4"] and len(everything) > len(filtered)
        assert page.locator(".chip").inner_text().startswith("brand: Trail")
        # open a product, and the 'for you' panel changes
        panel = page.locator("#you .card").evaluate_all("cards => cards.map(c => c.dataset.item)")
        results.first.locator("a.title").click()
        page.wait_for_url("**/product/A3")
        assert "Similar items" in page.content()
        assert "Based on the 1 product(s) you looked at." in page.locator("#you").inner_text()
        after = page.locator("#you .card").evaluate_all("cards => cards.map(c => c.dataset.item)")
        assert after and after != panel
        page.go_back()
        page.locator(".chip").click()  # the filter comes off again
        page.wait_for_url("**/?q=shoes")
        assert results.evaluate_all("cards => cards.map(c => c.dataset.item)") != filtered
        page.screenshot(path=str(tmp_path / "storefront.png"), full_page=True)
        browser.close()
