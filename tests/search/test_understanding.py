"""Query understanding: price bounds, brands and catalogue attribute values become filters; category intent."""

from __future__ import annotations

import pytest

from shopfusion.search.understanding import QueryParser


@pytest.fixture(scope="module")
def parser() -> QueryParser:
    return QueryParser.from_catalog(
        titles=["Cordless drill 18v", "Red running shoes", "Garden hose 50 ft", "Orbital sander", "Trail boots"],
        brands=["Ryobi", "Swift", None, "Black & Decker", "Trail"],
        categories=["Tools > Power", "Shoes > Running", "Garden > Watering", "Tools > Power", "Shoes > Hiking"],
        attributes=[{"colour": "green"}, {"colour": "red", "size": "10"}, {}, {}, {"size": "XL"}],
    )


@pytest.mark.parametrize(
    ("query", "text", "filters"),
    [
        ("ryobi drill under $50", "drill", {"price": "..50", "brand": "Ryobi"}),
        ("shoes between 20 and 40 dollars", "shoes", {"price": "20..40"}),
        ("hose over 30", "hose", {"price": "30.."}),
        ("sander from £10 to £25.5", "sander", {"price": "10..25.5"}),
        ("drill <= 99,90", "drill", {"price": "..99.9"}),
        ("鞋子 100元以下", "鞋子", {"price": "..100"}),
        ("black & decker sander", "sander", {"brand": "Black & Decker"}),
        ("size 10 red shoes", "shoes", {"colour": "red", "size": "10"}),
        ("boots size: xl", "boots", {"size": "xl"}),
        ("garden hose", "garden hose", {}),
    ],
)
def test_attribute_extraction(parser: QueryParser, query: str, text: str, filters: dict[str, str]) -> None:
    parsed = parser.parse(query)
    assert parsed.text == text
    assert parsed.filters == filters


def test_values_the_catalogue_lacks_stay_in_the_text(parser: QueryParser) -> None:
    parsed = parser.parse("blue shoes 10")  # no blue item; a bare 10 is not 'size 10'
    assert parsed.filters == {}
    assert parsed.text == "blue shoes 10"


def test_a_query_that_is_only_a_filter_keeps_its_words(parser: QueryParser) -> None:
    parsed = parser.parse("Black & Decker")
    assert parsed.filters == {"brand": "Black & Decker"}
    assert parsed.text == "Black & Decker"


def test_category_intent(parser: QueryParser) -> None:
    assert parser.parse("running shoes").category == "Shoes"
    assert parser.parse("hose").category == "Garden"
    cordless = parser.parse("cordless")
    assert cordless.category == "Tools" and 0.5 < cordless.category_confidence <= 1.0
    assert parser.parse("zzz unknown words").category is None
