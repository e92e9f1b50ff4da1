"""The store contract, on SQLite and on a real PostgreSQL (see the postgres_url fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from shopfusion.catalog.schema import Event, Item
from shopfusion.catalog.store import SqlStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    if request.param == "sqlite":
        return SqlStore(f"sqlite:///{tmp_path / 'store.sqlite'}")
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in ("events", "users", "items"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()
    return SqlStore(url)


def test_round_trip_and_counts(store: SqlStore) -> None:
    item = Item(item_id="i1", title="Mug", category="Home > Kitchen", attributes={"colour": "red"}, price=3.0)
    event = Event(type="purchase", timestamp="2024-01-01T10:00:00", user_id="u1", item_id="i1", quantity=2)
    with store.transaction() as tx:
        assert tx.upsert("items", [("i1", item)]).inserted == 1
        assert tx.upsert("events", [("e1", event)]).inserted == 1
    assert store.get_items(["i1", "missing"]) == {"i1": item}
    frame = store.events_frame()
    assert frame.loc[0, "user_id"] == "u1" and frame.loc[0, "quantity"] == 2
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert store.counts() == {"items": 1, "users": 0, "events": 1}


def test_delete_user_erases_their_events(store: SqlStore) -> None:
    events = [
        ("e1", Event(type="view", timestamp="1", user_id="u1", item_id="i")),
        ("e2", Event(type="view", timestamp="2", user_id="u2", item_id="i")),
    ]
    with store.transaction() as tx:
        tx.upsert("events", events)
    with store.transaction() as tx:
        assert tx.delete_user("u1") == 1
    assert store.events_frame()["user_id"].tolist() == ["u2"]
