"""The store: one interface, SQLite in the workspace by default, any SQLAlchemy URL (PostgreSQL) unchanged.

Every item and event write, item deletion and user erasure takes the next number of one write sequence, so a
build can record how far into the store it read (`watermark`) and a server can replay what came after it
(`changes_since`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from shopfusion.catalog.schema import Event, EventType, Item, Record, User, category_path

metadata = sa.MetaData()

items_table = sa.Table(
    "items",
    metadata,
    sa.Column("item_id", sa.String(256), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("category", sa.JSON, nullable=False),
    sa.Column("category_path", sa.Text, nullable=False, index=True),
    sa.Column("brand", sa.Text),
    sa.Column("price", sa.Float),
    sa.Column("currency", sa.String(3)),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("image", sa.Text),
    sa.Column("stock", sa.Integer),
    sa.Column("available", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.Column("content_hash", sa.String(40), nullable=False),
    sa.Column("seq", sa.BigInteger, index=True),  # null: written before the store numbered its writes
)

users_table = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(256), primary_key=True),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("content_hash", sa.String(40), nullable=False),
)

events_table = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.String(40), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False, index=True),
    sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user_id", sa.String(256), index=True),
    sa.Column("session_id", sa.String(256), index=True),
    sa.Column("item_id", sa.String(256), index=True),
    sa.Column("value", sa.Float),
    sa.Column("quantity", sa.Float),
    sa.Column("query", sa.Text),
    sa.Column("order_id", sa.String(256)),
    sa.Column("content_hash", sa.String(40), nullable=False),
    sa.Column("seq", sa.BigInteger, index=True),  # null: written before the store numbered its writes
)

item_deletions_table = sa.Table(
    "item_deletions",
    metadata,
    sa.Column("item_id", sa.String(256), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)

erasures_table = sa.Table(
    "erasures",
    metadata,
    sa.Column("user_id", sa.String(256), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
    sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
)

sequence_table = sa.Table(  # one row: the last write sequence number handed out
    "write_sequence",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)

TABLES: dict[str, tuple[sa.Table, str]] = {
    "items": (items_table, "item_id"),
    "users": (users_table, "user_id"),
    "events": (events_table, "event_id"),
}

# How far into the store a model version read its items and its events, as its manifest records them.
ITEMS_WATERMARK = "items_watermark"
EVENTS_WATERMARK = "events_watermark"

EVENT_COLUMNS = [
    "user_id",
    "session_id",
    "item_id",
    "type",
    "value",
    "quantity",
    "query",
    "timestamp",
    "order_id",
]


def content_hash(record: Record) -> str:
    payload = json.dumps(record.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(payload.encode()).hexdigest()


def record_row(record: Record, key: str) -> dict[str, Any]:
    row = record.model_dump()
    if isinstance(record, Item):
        row["category_path"] = category_path(record.category)
    if isinstance(record, Event):
        row["event_id"] = key
        row["type"] = record.type.value
    row["content_hash"] = content_hash(record)
    return row


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


@dataclass(frozen=True)
class Changes:
    """What the store holds that a build which read it up to its watermarks did not see."""

    events: list[Event]  # stored after the events watermark, in the order they were stored
    erased_users: list[str]  # erased after the events watermark
    items: list[Item]  # created or changed after the items watermark
    deleted_items: list[str]  # deleted after the items watermark and not written again since


class StoreWriter(Protocol):
    def upsert(self, kind: str, keyed: Sequence[tuple[str, Record]]) -> UpsertCounts: ...

    def delete_user(self, user_id: str) -> int: ...

    def delete_item(self, item_id: str) -> bool: ...


class Store(Protocol):
    """What later stages need from the catalogue and event store."""

    url: str

    def transaction(self) -> contextlib.AbstractContextManager[StoreWriter]: ...

    def items(self) -> list[Item]: ...

    def get_items(self, item_ids: Sequence[str]) -> dict[str, Item]: ...

    def watermark(self) -> int: ...

    def events_frame(self, types: Sequence[EventType] | None = None, *, upto: int | None = None) -> pd.DataFrame: ...

    def changes_since(self, *, events: int, items: int) -> Changes: ...

    def get_user(self, user_id: str) -> User | None: ...

    def count_user_events(self, user_id: str) -> int: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...


_IN_CHUNK = 500
_NUMBERED = ("items", "events")  # the kinds whose writes take sequence numbers


class _SqlWriter:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _take_sequence(self, n: int) -> int:
        """The first of `n` new sequence numbers. The counter row stays locked (written) until the commit, so
        writes commit in the order of their numbers and a reader never sees a number before a smaller one."""
        row = sequence_table.c.id == 1
        self.conn.execute(sequence_table.update().where(row).values(value=sequence_table.c.value + n))
        return int(self.conn.execute(sa.select(sequence_table.c.value).where(row)).scalar_one()) - n + 1

    def upsert(self, kind: str, keyed: Sequence[tuple[str, Record]]) -> UpsertCounts:
        """Insert new keys, update changed ones, skip identical ones: re-ingesting the same data is a no-op."""
        table, key_col = TABLES[kind]
        latest = {key: record for key, record in keyed}  # within a batch the last row for a key wins
        existing: dict[str, str] = {}
        keys = list(latest)
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            query = sa.select(table.c[key_col], table.c.content_hash).where(table.c[key_col].in_(chunk))
            existing.update({k: h for k, h in self.conn.execute(query)})
        counts = UpsertCounts()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for key, record in latest.items():
            row = record_row(record, key)
            if key not in existing:
                inserts.append(row)
            elif existing[key] != row["content_hash"]:
                updates.append({**row, "_key": key})
            else:
                counts.unchanged += 1
        if kind in _NUMBERED and (inserts or updates):
            first = self._take_sequence(len(inserts) + len(updates))
            for seq, row in enumerate([*inserts, *updates], start=first):
                row["seq"] = seq
        if inserts:
            self.conn.execute(table.insert(), inserts)
        if updates:
            stmt = table.update().where(table.c[key_col] == sa.bindparam("_key"))
            self.conn.execute(stmt, [{k: v for k, v in u.items() if k != key_col} for u in updates])
        counts.inserted, counts.updated = len(inserts), len(updates)
        return counts

    def delete_user(self, user_id: str) -> int:
        """Remove the user's events and profile, and record the erasure: a server replays it onto any model
        built before it (a rollback, a restart), which then no longer serves from what it learned of them."""
        removed = self.conn.execute(events_table.delete().where(events_table.c.user_id == user_id)).rowcount
        self.conn.execute(users_table.delete().where(users_table.c.user_id == user_id))
        seq = self._take_sequence(1)
        self.conn.execute(erasures_table.delete().where(erasures_table.c.user_id == user_id))
        self.conn.execute(erasures_table.insert().values(user_id=user_id, seq=seq, erased_at=datetime.now(UTC)))
        return int(removed or 0)

    def delete_item(self, item_id: str) -> bool:
        """The item leaves the catalogue; its events stay (history) and the next build ignores them."""
        if not self.conn.execute(items_table.delete().where(items_table.c.item_id == item_id)).rowcount:
            return False
        seq = self._take_sequence(1)
        self.conn.execute(item_deletions_table.delete().where(item_deletions_table.c.item_id == item_id))
        self.conn.execute(item_deletions_table.insert().values(item_id=item_id, seq=seq))
        return True


class SqlStore:
    """SQLAlchemy-backed store; every write happens inside one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        _number_writes(self.engine)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[StoreWriter]:
        with self.engine.begin() as conn:
            yield _SqlWriter(conn)

    def items(self) -> list[Item]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(items_table).order_by(items_table.c.item_id)).mappings().all()
        return [_item_from_row(r) for r in rows]

    def get_items(self, item_ids: Sequence[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        ids = list(dict.fromkeys(item_ids))
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                query = sa.select(items_table).where(items_table.c.item_id.in_(ids[start : start + _IN_CHUNK]))
                found.update({r["item_id"]: _item_from_row(r) for r in conn.execute(query).mappings()})
        return found

    def watermark(self) -> int:
        """The last write sequence number handed out. A build reads it before anything else and events only
        up to it (`events_frame(upto=...)`): what is numbered after it is exactly what the build did not see."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sequence_table.c.value)).scalar_one())

    def events_frame(self, types: Sequence[EventType] | None = None, *, upto: int | None = None) -> pd.DataFrame:
        """All events (`upto`: only those numbered up to that watermark), oldest first."""
        query = sa.select(*[events_table.c[c] for c in EVENT_COLUMNS]).order_by(events_table.c.timestamp)
        if types:
            query = query.where(events_table.c.type.in_([t.value for t in types]))
        if upto is not None:
            query = query.where(sa.or_(events_table.c.seq.is_(None), events_table.c.seq <= upto))
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=EVENT_COLUMNS)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame

    def changes_since(self, *, events: int, items: int) -> Changes:
        """What came after a build that read events up to the `events` watermark and items up to `items`."""
        new_events = sa.select(*[events_table.c[c] for c in EVENT_COLUMNS]).where(events_table.c.seq > events)
        erasures = sa.select(erasures_table.c.user_id).where(erasures_table.c.seq > events)
        written = sa.select(items_table).where(items_table.c.seq > items).order_by(items_table.c.seq)
        deleted = (
            sa.select(item_deletions_table.c.item_id)
            .where(item_deletions_table.c.seq > items)
            .where(~item_deletions_table.c.item_id.in_(sa.select(items_table.c.item_id)))
        )
        with self.engine.connect() as conn:
            stored = conn.execute(new_events.order_by(events_table.c.seq)).mappings().all()
            erased = conn.execute(erasures.order_by(erasures_table.c.seq)).scalars().all()
            changed = conn.execute(written).mappings().all()
            gone = conn.execute(deleted.order_by(item_deletions_table.c.seq)).scalars().all()
        return Changes(
            [Event.model_validate(_utc(dict(r))) for r in stored],
            list(erased),
            [_item_from_row(r) for r in changed],
            list(gone),
        )

    def get_user(self, user_id: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users_table).where(users_table.c.user_id == user_id)).mappings().first()
        return None if row is None else User(user_id=row["user_id"], attributes=row["attributes"])

    def count_user_events(self, user_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(events_table).where(events_table.c.user_id == user_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                kind: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
                for kind, (table, _) in TABLES.items()
            }

    def close(self) -> None:
        """Close the pooled connections; the store opens new ones if it is used again."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _number_writes(engine: Engine) -> None:
    """Give a store created before writes were numbered its `seq` columns (rows already there stay null: older
    than every watermark), and start the sequence."""
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        for table in (items_table, events_table):
            if "seq" not in {c["name"] for c in inspector.get_columns(table.name)}:
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN seq BIGINT"))
                for index in table.indexes:
                    if "seq" in index.columns:
                        index.create(conn)
    with contextlib.suppress(sa.exc.IntegrityError), engine.begin() as conn:  # another process started it
        if conn.execute(sa.select(sequence_table.c.value)).first() is None:
            conn.execute(sequence_table.insert().values(id=1, value=0))


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite gives back naive datetimes: they were stored in UTC."""
    for name, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[name] = value.replace(tzinfo=UTC)
    return row


def _item_from_row(row: Any) -> Item:
    data = {k: v for k, v in dict(row).items() if k not in ("category_path", "content_hash", "seq")}
    return Item(**_utc(data))


_stores: dict[str, SqlStore] = {}
_stores_lock = threading.Lock()


def open_store(url: str) -> Store:
    """The process's one store for `url`: its database engine (and connection pool) is created, and its
    tables checked, once, then shared by every caller and thread."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = SqlStore(url)
        return store
