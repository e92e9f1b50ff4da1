"""Judgements from behaviour events: which click, add-to-cart or purchase counts for which search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shopfusion.catalog.ingest import read_events
from shopfusion.catalog.store import EVENT_COLUMNS
from shopfusion.search.judgements import (
    co_interaction_pairs,
    judgements_from_events,
    merge_judgements,
    normalise_query,
)

CATALOGUE = {"A1", "A2", "A3", "A4"}
START = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def event(
    kind: str,
    minute: float,
    *,
    session: str | None = "s1",
    user: str | None = None,
    item: str | None = None,
    query: str | None = None,
    order: str | None = None,
) -> dict[str, object]:
    return {
        "type": kind,
        "timestamp": START + timedelta(minutes=minute),
        "user_id": user,
        "session_id": session,
        "item_id": item,
        "query": query,
        "order_id": order,
    }


def grades(*events: dict[str, object], **settings: Any) -> dict[str, dict[str, float]]:
    frame = pd.DataFrame(list(events)).reindex(columns=EVENT_COLUMNS)
    found = judgements_from_events(frame, CATALOGUE, **settings)
    return {found.queries[q]: g for q, g in found.qrels.items()}


def test_a_click_after_a_search_in_the_same_session_counts() -> None:
    assert grades(event("search", 0, query="Red  Shoes"), event("click", 2, item="A1")) == {"red shoes": {"A1": 1.0}}


def test_a_click_after_the_window_does_not_count() -> None:
    assert grades(event("search", 0, query="shoes"), event("click", 31, item="A1")) == {}
    assert grades(event("search", 0, query="shoes"), event("click", 31, item="A1"), attribution_minutes=45) == {
        "shoes": {"A1": 1.0}
    }


def test_a_click_after_a_second_search_goes_to_the_second_query() -> None:
    found = grades(
        event("search", 0, query="shoes"),
        event("click", 1, item="A1"),
        event("search", 5, query="socks"),
        event("click", 6, item="A4"),
    )
    assert found == {"shoes": {"A1": 1.0}, "socks": {"A4": 1.0}}


def test_the_strongest_action_wins_and_sessions_with_the_same_query_add_up() -> None:
    found = grades(
        event("search", 0, query="shoes"),
        event("click", 1, item="A1"),
        event("add_to_cart", 2, item="A1"),
        event("purchase", 3, item="A1", order="o1"),
        event("click", 4, item="A2"),
        event("search", 0, session="s2", query="SHOES "),
        event("add_to_cart", 1, session="s2", item="A2"),
        event("click", 1, session="s2", item="A3"),
    )
    assert found == {"shoes": {"A1": 3.0, "A2": 2.0, "A3": 1.0}}


def test_other_sessions_and_users_do_not_count() -> None:
    found = grades(
        event("search", 0, query="shoes"),
        event("click", 1, session="s2", item="A1"),
        event("search", 0, session=None, user="u1", query="socks"),
        event("click", 1, session=None, user="u2", item="A4"),
        event("click", 2, session=None, user="u1", item="A3"),  # no session id: the same user's search counts
    )
    assert found == {"socks": {"A3": 1.0}}


def test_items_outside_the_catalogue_are_dropped() -> None:
    frame = pd.DataFrame(
        [event("search", 0, query="shoes"), event("click", 1, item="Z9"), event("click", 2, item="A1")]
    )
    found = judgements_from_events(frame, CATALOGUE)
    assert found.qrels == {"event:shoes": {"A1": 1.0}}
    assert (found.report.attributed, found.report.outside_catalogue) == (2, 1)


def test_rows_with_missing_fields_are_skipped_and_counted() -> None:
    frame = pd.DataFrame(
        [
            event("search", 0, query="   "),
            event("search", 0, session="s2", query=None),
            event("click", 1, item="A1"),  # its session's only search had no text
            {**event("search", 0, session="s3", query="socks"), "timestamp": "not a time"},
            event("search", 0, session=None, query="socks"),
            event("click", 1, session="s2", item=None),
            event("view", 1, item="A2"),  # not evidence for search: ignored, not an error
            {**event("search", 0, session="s4", query="socks"), "user_id": float("nan")},
            event("click", 1, session="s4", item="A4"),
        ]
    ).drop(columns=["order_id"])  # a missing column reads as missing values
    found = judgements_from_events(frame, CATALOGUE)
    assert found.qrels == {"event:socks": {"A4": 1.0}}
    assert dict(found.report.skipped) == {
        "search without query text": 2,
        "no timestamp": 1,
        "no session_id or user_id": 1,
        "action without item_id": 1,
    }


def test_click_only_pairs_can_require_several_sessions() -> None:
    found = grades(
        event("search", 0, query="shoes"),
        event("click", 1, item="A1"),
        event("purchase", 2, item="A2"),
        event("search", 0, session="s2", query="shoes"),
        event("click", 1, session="s2", item="A3"),
        event("search", 0, session="s3", query="shoes"),
        event("click", 1, session="s3", item="A3"),
        click_min_sessions=2,
    )
    assert found == {"shoes": {"A2": 3.0, "A3": 1.0}}


def test_file_grades_win_and_the_same_query_text_joins_the_judged_query() -> None:
    queries, qrels = merge_judgements(
        {"q1": "Red Shoes"},
        {"q1": {"A1": 2.0}},
        {"event:red shoes": "red shoes", "event:socks": "socks"},
        {"event:red shoes": {"A1": 3.0, "A2": 1.0}, "event:socks": {"A4": 3.0}},
    )
    assert queries == {"q1": "Red Shoes", "event:socks": "socks"}
    assert qrels == {"q1": {"A1": 2.0, "A2": 1.0}, "event:socks": {"A4": 3.0}}
    assert normalise_query(None) == "" and normalise_query(" A\t b ") == "a b"


def test_co_interaction_pairs_come_from_consecutive_picks_most_frequent_first() -> None:
    frame = pd.DataFrame(
        [
            event("purchase", 0, item="A1", order="o1"),
            event("purchase", 0, item="A2", order="o1"),
            event("purchase", 0, item="A3", order="o1"),
            event("purchase", 1, session="s2", item="A3", order="o2"),
            event("purchase", 1, session="s2", item="A2", order="o2"),
            event("add_to_cart", 0, session="s3", item="A4"),  # no order: the session is the basket
            event("add_to_cart", 1, session="s3", item="Z9"),  # not in the catalogue
            event("add_to_cart", 2, session="s3", item="A1"),
            event("click", 3, session="s3", item="A2"),  # a click is not a pick
        ]
    )
    assert co_interaction_pairs(frame, CATALOGUE, 10) == [("A2", "A3"), ("A1", "A2"), ("A1", "A4")]
    assert co_interaction_pairs(frame, CATALOGUE, 1) == [("A2", "A3")]
    assert co_interaction_pairs(frame, CATALOGUE, 0) == []


def test_an_events_file_is_validated_like_ingest_and_gives_the_store_columns(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "type,timestamp,session_id,item_id,query\n"
        "search,2024-03-01T10:00:00,s1,,red shoes\n"
        "click,2024-03-01T10:01:00,s1,A1,\n"
        "search,2024-03-01T10:02:00,s1,,\n"  # a search without a query: rejected with its row number
        "teleport,2024-03-01T10:03:00,s1,A1,\n"
    )
    frame, summary = read_events(path, rejects_dir=tmp_path / "rejects")
    assert list(frame.columns) == EVENT_COLUMNS and len(frame) == 2
    assert (summary.rows, summary.loaded, summary.rejected) == (4, 2, 2)
    assert summary.rejects_path is not None and summary.rejects_path.exists()
    assert judgements_from_events(frame, CATALOGUE).qrels == {"event:red shoes": {"A1": 1.0}}


@pytest.mark.parametrize("kind", ["view", "rating", "impression"])
def test_other_event_types_are_no_evidence(kind: str) -> None:
    assert grades(event("search", 0, query="shoes"), {**event(kind, 1, item="A1"), "value": 4.0}) == {}
