"""Search service over a generated catalogue: filters, facets, sorting, pagination, explanations, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from shopfusion.catalog.schema import Item
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.search.indexes import build_search_artifacts
from shopfusion.search.service import SearchError, SearchService
from shopfusion.settings import SearchSettings
from tests.conftest import HashingEncoder

COLOURS = ["red", "blue", "green"]


def make_items() -> list[Item]:
    items = []
    for i in range(30):
        category = ["Shoes > Running", "Shoes > Hiking", "Shoestrings"][i % 3]
        items.append(
            Item(
                item_id=f"S{i}",
                title=f"{COLOURS[i % 3]} {'running shoe' if i % 3 == 0 else 'hiking shoe' if i % 3 == 1 else 'shoe lace'} {i}",
                category=category,
                brand=["Swift", "Trail"][i % 2],
                price=float(10 + i) if i != 7 else None,
                available=i % 5 != 0,
                attributes={"colour": COLOURS[i % 3], "size": [str(40 + i % 4), str(41 + i % 4)]},
                created_at=datetime(2024, 1, 1 + i, tzinfo=UTC),
            )
        )
    return items


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> SearchService:
    folder = tmp_path_factory.mktemp("search")
    items = make_items()
    encoder = HashingEncoder()
    settings = SearchSettings(candidates=100)
    events = pd.DataFrame({"item_id": ["S3"] * 5 + ["S9"] * 3 + ["S0"]})
    vectors = encoder.encode([i.text() for i in items])
    build_search_artifacts(items, vectors, settings, folder, events)
    catalog = CatalogSnapshot.from_items(items)
    return SearchService.load(folder, catalog, encoder, settings, folder, vectors=vectors)  # vectors: personalisation


def everything(service: SearchService, query: str = "shoe", **kwargs: object) -> list[str]:
    return [r.item_id for r in service.search(query, 1000, **kwargs)]  # type: ignore[arg-type]


def by_id() -> dict[str, Item]:
    return {i.item_id: i for i in make_items()}


def test_results_carry_signals(service: SearchService) -> None:
    response = service.search("red running shoe", 5)
    top = response[0]
    assert by_id()[top.item_id].attributes["colour"] == "red"
    assert {"lexical_score", "semantic_score", "lexical_rank", "semantic_rank", "fused_rank"} <= set(top.signals)
    assert [r.signals["fused_rank"] for r in response] == [1, 2, 3, 4, 5]


def test_category_is_a_path_prefix(service: SearchService) -> None:
    found = everything(service, filters={"category": "Shoes"})
    assert found and all(" > ".join(by_id()[i].category).startswith("Shoes >") for i in found)  # not Shoestrings
    assert all(
        by_id()[i].category == ["Shoes", "Running"] for i in everything(service, filters={"category": "shoes>running"})
    )


def test_brand_price_stock_and_attribute_filters(service: SearchService) -> None:
    items = by_id()
    filters = {"brand": "trail", "price": "15..30", "in_stock": "true", "colour": "blue,green", "size": "42"}
    found = everything(service, filters=filters)
    assert found
    for item_id in found:
        item = items[item_id]
        assert item.brand == "Trail" and item.price is not None and 15 <= item.price <= 30 and item.available
        assert item.attributes["colour"] in {"blue", "green"} and "42" in item.attributes["size"]
    assert everything(service, filters={"price": "..12"}) == everything(service, filters={"price": "0..12"})


def test_facets_count_the_whole_matched_set(service: SearchService) -> None:
    response = service.search(
        "shoe", 3, filters={"in_stock": "true"}, facets=["brand", "category", "in_stock", "colour"]
    )
    matched = [by_id()[i] for i in everything(service, filters={"in_stock": "true"})]
    assert response.total == len(matched) and len(response) == 3
    assert response.facets["brand"] == {b: sum(i.brand == b for i in matched) for b in ("Swift", "Trail")}
    assert sum(response.facets["category"].values()) == len(matched)
    assert response.facets["in_stock"] == {"true": len(matched)}
    assert set(response.facets["colour"]) == set(COLOURS)


def test_sorting(service: SearchService) -> None:
    items = by_id()
    prices = [items[i].price for i in everything(service, sort="price_asc")]
    known = [p for p in prices if p is not None]
    assert known == sorted(known) and prices[-1] is None  # no price goes last
    newest = [items[i].created_at for i in everything(service, sort="newest")]
    assert newest == sorted(newest, reverse=True)
    assert everything(service, sort="popularity")[:3] == ["S3", "S9", "S0"]


def test_pagination(service: SearchService) -> None:
    first, second = service.search("shoe", 4, page=1), service.search("shoe", 4, page=2)
    assert [r.item_id for r in first] + [r.item_id for r in second] == everything(service)[:8]
    beyond = service.search("shoe", 4, page=100)
    assert len(beyond) == 0 and beyond.total == first.total
    assert beyond.as_dict()["results"] == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": ""}, "empty query"),
        ({"query": "   "}, "empty query"),
        ({"query": "x" * 10_000}, "limit is 1000"),
        ({"filters": {"material": "wool"}}, "unknown filter field 'material'"),
        ({"filters": {"price": "cheap"}}, "MIN..MAX"),
        ({"filters": {"price": "50..10"}}, "minimum is above maximum"),
        ({"filters": {"in_stock": "maybe"}}, "true or false"),
        ({"filters": {"brand": " "}}, "no value"),
        ({"sort": "random"}, "unknown sort"),
        ({"facets": ["material"]}, "unknown facet"),
        ({"page": 0}, "at least 1"),
    ],
)
def test_bad_input_gives_clear_errors(service: SearchService, kwargs: dict[str, object], message: str) -> None:
    query = str(kwargs.pop("query", "shoe"))
    with pytest.raises(SearchError, match=message):
        service.search(query, 10, **kwargs)  # type: ignore[arg-type]


def test_query_vectors_are_cached(service: SearchService) -> None:
    encoder = service.encoder
    assert isinstance(encoder, HashingEncoder)
    service.search("blue hiking shoe", 3)
    calls = len(encoder.encoded)
    service.search("blue hiking shoe", 3, page=2)
    assert len(encoder.encoded) == calls


def test_personalisation_lifts_simulated_shoppers_preferences(service: SearchService) -> None:
    """Simulated shoppers each prefer one kind of shoe (their history: three items of it); for the ambiguous
    query "shoe", nDCG@10 of their preferred kind is higher with their profile than without, on average."""
    from shopfusion.metrics import ndcg_at_k

    items = make_items()
    lifts = []
    for kind in ("Shoes > Running", "Shoes > Hiking", "Shoestrings"):
        of_kind = [p for p, i in enumerate(items) if " > ".join(i.category) == kind]
        for start in range(0, 6, 3):
            history = of_kind[start : start + 3]
            relevant = {items[p].item_id: 1.0 for p in of_kind if p not in history}
            plain = [r.item_id for r in service.search("shoe", 10)]
            personal = [r.item_id for r in service.search("shoe", 10, profile=history)]
            lifts.append(ndcg_at_k(personal, relevant, 10) - ndcg_at_k(plain, relevant, 10))
    assert sum(lifts) / len(lifts) > 0.05
    assert service.search("shoe", 10, profile=[]) == service.search("shoe", 10)


def test_query_understanding_turns_words_into_filters(service: SearchService) -> None:
    response = service.search("swift shoe under 20", 100)
    assert response.understood == {"text": "shoe", "filters": {"price": "..20", "brand": "Swift"}, "category": "Shoes"}
    items = by_id()
    assert response
    assert all(items[r.item_id].brand == "Swift" and (items[r.item_id].price or 99) <= 20 for r in response)
    explicit = service.search("swift shoe", 100, filters={"brand": "Trail"})  # the caller's filter wins
    assert explicit and all(items[r.item_id].brand == "Trail" for r in explicit)
