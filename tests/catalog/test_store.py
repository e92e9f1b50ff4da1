"""The store contract, on SQLite and on a real PostgreSQL (see the postgres_url fixture)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from shopfusion.catalog.schema import Event, Item
from shopfusion.catalog.store import SqlStore, metadata, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    if request.param == "sqlite":
        return SqlStore(f"sqlite:///{tmp_path / 'store.sqlite'}")
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
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


def _event(user: str, item: str, timestamp: str = "2024-01-01T10:00:00") -> Event:
    return Event(type="view", timestamp=timestamp, user_id=user, item_id=item)


def test_a_build_sees_up_to_its_watermark_and_the_rest_is_replayable(store: SqlStore) -> None:
    mug = Item(item_id="i1", title="Mug", category="Home")
    cup = Item(item_id="i2", title="Cup", category="Home")
    with store.transaction() as tx:
        tx.upsert("items", [("i1", mug), ("i2", cup)])
        tx.upsert("events", [("e1", _event("u1", "i1")), ("e2", _event("u2", "i1"))])
    assert store.changes_since(events=0, items=0).events[1].user_id == "u2"
    built = store.watermark()  # what a build reads first
    with store.transaction() as tx:
        tx.upsert("events", [("e3", _event("u1", "i2", "2023-01-01T00:00:00")), ("e4", _event("u3", "i2"))])
        tx.upsert(
            "items",
            [("i1", mug.model_copy(update={"title": "Big mug"})), ("i3", cup.model_copy(update={"item_id": "i3"}))],
        )
        tx.delete_item("i2")
        tx.delete_user("u2")
    assert store.events_frame(upto=built)["user_id"].tolist() == ["u1"]  # u2 erased since; e3, e4 came after
    assert len(store.events_frame()) == 3
    changes = store.changes_since(events=built, items=built)
    assert [(e.user_id, e.item_id) for e in changes.events] == [("u1", "i2"), ("u3", "i2")]  # in stored order
    assert changes.events[0].timestamp.utcoffset() == timedelta(0)
    assert {i.title for i in changes.items} == {"Big mug", "Cup"} and changes.deleted_items == ["i2"]
    assert changes.erased_users == ["u2"]
    assert store.changes_since(events=store.watermark(), items=store.watermark()) == type(changes)([], [], [], [])
    with store.transaction() as tx:  # written again after its deletion: a write, no longer a deletion
        tx.upsert("items", [("i2", cup)])
    again = store.changes_since(events=built, items=built)
    assert again.deleted_items == [] and [i.item_id for i in again.items][-1] == "i2"


def test_unchanged_rows_keep_their_number(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.upsert("events", [("e1", _event("u1", "i1"))])
    mark = store.watermark()
    with store.transaction() as tx:
        assert tx.upsert("events", [("e1", _event("u1", "i1"))]).unchanged == 1
        assert not tx.delete_item("missing")
    assert store.watermark() == mark


def test_a_store_from_before_numbered_writes_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE events (event_id VARCHAR(40) PRIMARY KEY, type VARCHAR(16) NOT NULL, "
                "timestamp DATETIME NOT NULL, user_id VARCHAR(256), session_id VARCHAR(256), "
                "item_id VARCHAR(256), value FLOAT, quantity FLOAT, query TEXT, order_id VARCHAR(256), "
                "content_hash VARCHAR(40) NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO events (event_id, type, timestamp, user_id, item_id, content_hash) "
                "VALUES ('old', 'view', '2024-01-01 10:00:00', 'u0', 'i1', 'x')"
            )
        )
    engine.dispose()
    store = SqlStore(url)
    with store.transaction() as tx:
        tx.upsert("events", [("new", _event("u1", "i1"))])
    assert store.events_frame(upto=0)["user_id"].tolist() == ["u0"]  # older than every watermark
    assert [e.user_id for e in store.changes_since(events=0, items=0).events] == ["u1"]


def test_one_store_per_url_per_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    first = open_store(url)
    assert open_store(url) is first and open_store(f"sqlite:///{tmp_path / 'other.sqlite'}") is not first
    first.close()  # releases connections; the shared store still works
    assert first.counts()["items"] == 0
