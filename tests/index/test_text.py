"""Analysis shared by index and query: numbers, units, model numbers, CJK."""

from __future__ import annotations

import pytest

from shopfusion.index.text import analyze, normalize_numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3/4 in.", "0.75 in."),
        (".75 in", "0.75 in"),
        ("1-1/2 in. pipe", "1.5 in. pipe"),
        ("1 1/2 gallon", "1.5 gallon"),
        ("1,000 watts", "1000 watts"),
        ("2.0 ft", "2 ft"),
        ("1/0 wire", "1/0 wire"),  # a zero denominator stays as written
    ],
)
def test_numbers_are_normalised(text: str, expected: str) -> None:
    assert normalize_numbers(text) == expected


def test_fraction_and_decimal_queries_meet_the_same_tokens() -> None:
    assert analyze("3/4 in. x 10 ft. PVC Pipe") == analyze(".75 inch x 10 feet pvc pipes")


def test_alphanumerics_split_and_model_numbers_kept() -> None:
    assert analyze("2x4 stud") == ["2", "4", "stud"]
    assert analyze("18v drill") == ["18", "v", "drill"]
    assert "wb44t10015" in analyze("GE WB44T10015")


def test_stopwords_and_stemming() -> None:
    assert analyze("The boots for the men") == ["boot", "men"]


def test_chinese_is_segmented() -> None:
    tokens = analyze("红色连衣裙")
    assert len(tokens) >= 2 and "".join(tokens) == "红色连衣裙"
