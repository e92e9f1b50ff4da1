"""`shopfusion search` flags end to end: filters, sorting, pages, JSON shape, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopfusion.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def search(workspace: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["search", *args, "-w", str(workspace)])
    return result.exit_code, result.output


def test_filters_sort_page_json(built_workspace: Path) -> None:
    code, out = search(built_workspace, "shoes", "--filter", "brand=Swift", "--sort", "price_asc", "-k", "2", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert [r["item_id"] for r in report["results"]] == ["A5", "A1"]  # Swift items by price: socks 8.0, shoes 59.0
    assert report["total"] >= 2 and report["facets"]["brand"] == {"Swift": report["total"]}
    code, out = search(
        built_workspace, "shoes", "--filter", "brand=Swift", "--sort", "price_asc", "-k", "2", "--page", "2", "--json"
    )
    assert code == 0 and [r["item_id"] for r in json.loads(out)["results"]] == ["A2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "--json"), "empty query"),
        (("shoes", "--filter", "colour=red"), "unknown filter field"),
        (("shoes", "--filter", "price=cheap"), "MIN..MAX"),
        (("shoes", "--filter", "price"), "FIELD=VALUE"),
        (("shoes", "--sort", "random"), "unknown sort"),
    ],
)
def test_bad_requests_exit_with_a_reason(built_workspace: Path, args: tuple[str, ...], message: str) -> None:
    code, out = search(built_workspace, *args)
    assert code == 2 and message in out
