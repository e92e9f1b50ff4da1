"""Engine.search on a workspace built with the real encoder: the typed response, filters, typos, sorting."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfusion.engine import Engine
from shopfusion.search.service import SearchError, SearchResponse

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(built_workspace: Path) -> Engine:
    return Engine.open(built_workspace)


def test_typed_response_with_signals_and_facets(engine: Engine) -> None:
    response = engine.search("hiking boots", k=3, facets=["brand", "category"])
    assert isinstance(response, SearchResponse) and response[0].item_id == "A3"
    assert response.total >= len(response) and response.facets["brand"]
    signals = response[0].signals
    assert signals["lexical_score"] > 0 and signals["fused_rank"] == 1 and "semantic_score" in signals


def test_typo_and_filters(engine: Engine) -> None:
    assert engine.search("leathr hikking bots", k=1)[0].item_id == "A3"
    socks = engine.search("socks", k=10, filters={"category": "Clothing", "price": "..10"})
    assert [r.item_id for r in socks] == ["A5"]
    cheapest_first = engine.search("shoes", k=50, sort="price_asc")
    prices = [r.price for r in cheapest_first if r.price is not None]
    assert prices == sorted(prices)


def test_bad_requests_raise_search_errors(engine: Engine) -> None:
    with pytest.raises(SearchError):
        engine.search("")
    with pytest.raises(SearchError):
        engine.search("shoes", filters={"warranty": "2y"})
