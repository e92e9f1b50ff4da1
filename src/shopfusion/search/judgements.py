"""Search judgements from behaviour events: what shoppers clicked, put in the cart or bought after a search.

Most shops have no graded judgements, but they log searches and what followed. Each click, add-to-cart or
purchase is attributed to the latest search of the same session (or of the same user, for events without a
session id) at most `attribution_minutes` before it; a later search of that session takes over, since the
shopper asked for something else. Grades: click 1, add-to-cart 2, purchase 3, the strongest per (query, item).
The same query typed in many sessions is one query (lower-cased, whitespace collapsed), so its evidence adds up
and the train/validation split of the trainer cannot put one query on both sides.

Items picked together (in one order, else one session) also give the bi-encoder extra (item text, item text)
pairs: they teach which products belong together even where nobody searched for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import pandas as pd

from shopfusion.catalog.benchmarks import Qrels
from shopfusion.catalog.schema import EventType

GRADES: dict[str, float] = {EventType.CLICK.value: 1.0, EventType.ADD_TO_CART.value: 2.0, EventType.PURCHASE.value: 3.0}
PICKS = (EventType.ADD_TO_CART.value, EventType.PURCHASE.value)  # what counts as choosing an item for co-interaction
EVENT_QUERY_PREFIX = "event:"  # query ids of judgements from events: the prefix plus the normalised query text
_COLUMNS = ("type", "timestamp", "user_id", "session_id", "item_id", "query", "order_id")


def normalise_query(text: object) -> str:
    """Lower-cased with whitespace collapsed; "" for missing text."""
    return " ".join(text.lower().split()) if isinstance(text, str) else ""


@dataclass
class AttributionReport:
    """What the events gave: rows used, rows skipped by reason, and the judgements that came out."""

    searches: int = 0
    actions: int = 0  # clicks, add-to-carts and purchases read
    attributed: int = 0  # actions that followed a search in the window
    outside_catalogue: int = 0  # attributed actions on items the catalogue does not have
    below_click_sessions: int = 0  # click-only pairs clicked in fewer than `click_min_sessions` sessions
    queries: int = 0
    judgements: int = 0  # (query, item) pairs with a grade
    skipped: Counter[str] = field(default_factory=Counter)  # reason → rows that could not be used


@dataclass
class EventJudgements:
    """Judgements in the shapes the TSV loaders give (`load_queries`, `load_qrels`), and how they were found."""

    queries: dict[str, str]
    qrels: Qrels
    report: AttributionReport


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the columns used, as text or missing, timestamps as UTC (unparseable ones missing); an absent column
    reads as missing rather than failing."""
    out = frame.reindex(columns=list(_COLUMNS)).copy()
    for column in ("type", "user_id", "session_id", "item_id", "order_id"):
        text = out[column].astype("string").str.strip()
        out[column] = text.where(text != "", None)
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True, errors="coerce")
    return out


def _actor(frame: pd.DataFrame) -> pd.Series:
    """Whose actions belong together: the session, else the user (prefixed so the two never collide)."""
    return ("s:" + frame["session_id"]).fillna("u:" + frame["user_id"])


def judgements_from_events(
    events: pd.DataFrame,
    catalogue: Collection[str],
    *,
    attribution_minutes: float = 30.0,
    click_min_sessions: int = 1,
) -> EventJudgements:
    """Graded (query, item) judgements from `events` (the columns of `Store.events_frame()`), for items in
    `catalogue`. Rows that cannot be used (no timestamp, no session or user, a search without text, an action
    without an item) are skipped and counted, never fatal."""
    report = AttributionReport()
    frame = _clean(events)
    frame = frame[frame["type"].isin([EventType.SEARCH.value, *GRADES])]
    frame = frame.assign(actor=_actor(frame), query=frame["query"].map(normalise_query))
    is_search = frame["type"] == EventType.SEARCH.value
    problems = {
        "no timestamp": frame["timestamp"].isna(),
        "no session_id or user_id": frame["actor"].isna(),
        "search without query text": is_search & (frame["query"] == ""),
        "action without item_id": ~is_search & frame["item_id"].isna(),
    }
    usable = pd.Series(True, index=frame.index)
    for reason, bad in problems.items():
        bad = bad & usable  # each row counted once, under its first problem
        if bad.any():
            report.skipped[reason] = int(bad.sum())
        usable &= ~bad
    frame = frame[usable]
    searches = frame[frame["type"] == EventType.SEARCH.value][["actor", "timestamp", "query"]]
    actions = frame[frame["type"] != EventType.SEARCH.value][["actor", "timestamp", "type", "item_id"]]
    report.searches, report.actions = len(searches), len(actions)
    if searches.empty or actions.empty:
        return EventJudgements({}, {}, report)
    # Each action meets the latest search of its actor at or before it; one older than the window is no match
    # (and no earlier search can be nearer), so a newer search always takes an action from an older one.
    attributed = pd.merge_asof(
        actions.sort_values("timestamp", kind="stable"),
        searches.sort_values("timestamp", kind="stable"),
        on="timestamp",
        by="actor",
        direction="backward",
        tolerance=pd.Timedelta(minutes=attribution_minutes),
    ).dropna(subset=["query"])
    report.attributed = len(attributed)
    known = attributed["item_id"].isin(set(catalogue))
    report.outside_catalogue = int((~known).sum())
    attributed = attributed[known].assign(grade=attributed["type"].map(GRADES).astype(float))
    pairs = attributed.groupby(["query", "item_id"], sort=True).agg(
        grade=("grade", "max"), sessions=("actor", "nunique")
    )
    weak = (pairs["grade"] <= GRADES[EventType.CLICK.value]) & (pairs["sessions"] < click_min_sessions)
    report.below_click_sessions = int(weak.sum())
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    for text, item_id, grade in pairs.loc[~weak, "grade"].reset_index().itertuples(index=False):
        qid = EVENT_QUERY_PREFIX + str(text)
        queries[qid] = str(text)
        qrels.setdefault(qid, {})[str(item_id)] = float(grade)
    report.queries, report.judgements = len(queries), sum(len(g) for g in qrels.values())
    return EventJudgements(queries, qrels, report)


def merge_judgements(
    queries: Mapping[str, str], qrels: Qrels, extra_queries: Mapping[str, str], extra_qrels: Qrels
) -> tuple[dict[str, str], Qrels]:
    """`queries`/`qrels` (e.g. from judgement files) with `extra_*` (e.g. from events) added: an extra query whose
    normalised text a query already has joins that query, and where both grade the same item the first grade
    wins."""
    merged_queries, merged = dict(queries), {q: dict(g) for q, g in qrels.items()}
    by_text: dict[str, str] = {}
    for qid, text in queries.items():
        by_text.setdefault(normalise_query(text), qid)
    for qid, text in extra_queries.items():
        target = by_text.get(normalise_query(text), qid)
        merged_queries.setdefault(target, text)
        grades = merged.setdefault(target, {})
        for item_id, grade in extra_qrels.get(qid, {}).items():
            grades.setdefault(item_id, grade)
    return merged_queries, merged


def co_interaction_pairs(events: pd.DataFrame, catalogue: Collection[str], limit: int) -> list[tuple[str, str]]:
    """Up to `limit` (item, item) pairs picked one after the other in the same order (else session), the pairs
    seen in most orders first (ties by ids, so the choice is deterministic). Consecutive picks only: a basket of
    n items gives n - 1 pairs, not n², and neighbours in a basket are the likeliest to belong together."""
    if limit <= 0:
        return []
    frame = _clean(events)
    known = set(catalogue)
    frame = frame[frame["type"].isin(PICKS) & frame["item_id"].isin(known) & frame["timestamp"].notna()]
    basket = ("o:" + frame["order_id"]).fillna("s:" + frame["session_id"])
    frame = frame.assign(basket=basket).dropna(subset=["basket"]).sort_values(["basket", "timestamp"], kind="stable")
    frame = frame.drop_duplicates(["basket", "item_id"])  # an item picked twice in a basket pairs once
    following = frame.groupby("basket")["item_id"].shift(-1)
    picked = pd.DataFrame({"a": frame["item_id"], "b": following}).dropna()
    if picked.empty:
        return []
    swap = picked["a"] > picked["b"]  # unordered: (a, b) and (b, a) are the same evidence
    pairs = pd.DataFrame({"a": picked["a"].where(~swap, picked["b"]), "b": picked["b"].where(~swap, picked["a"])})
    counts = pairs.value_counts().reset_index(name="orders")
    counts = counts.sort_values(["orders", "a", "b"], ascending=[False, True, True], kind="stable")
    return [(str(a), str(b)) for a, b in counts[["a", "b"]].head(limit).itertuples(index=False)]
