"""The store: one interface, SQLite in the workspace by default, any SQLAlchemy URL (PostgreSQL) unchanged."""

from __future__ import annotations

import contextlib
import hashlib
import json
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
)

TABLES: dict[str, tuple[sa.Table, str]] = {
    "items": (items_table, "item_id"),
    "users": (users_table, "user_id"),
    "events": (events_table, "event_id"),
}

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

    def events_frame(self, types: Sequence[EventType] | None = None) -> pd.DataFrame: ...

    def get_user(self, user_id: str) -> User | None: ...

    def count_user_events(self, user_id: str) -> int: ...

    def counts(self) -> dict[str, int]: ...

    def close(self) -> None: ...


_IN_CHUNK = 500


class _SqlWriter:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

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
        if inserts:
            self.conn.execute(table.insert(), inserts)
        if updates:
            stmt = table.update().where(table.c[key_col] == sa.bindparam("_key"))
            self.conn.execute(stmt, [{k: v for k, v in u.items() if k != key_col} for u in updates])
        counts.inserted, counts.updated = len(inserts), len(updates)
        return counts

    def delete_user(self, user_id: str) -> int:
        removed = self.conn.execute(events_table.delete().where(events_table.c.user_id == user_id)).rowcount
        self.conn.execute(users_table.delete().where(users_table.c.user_id == user_id))
        return int(removed or 0)

    def delete_item(self, item_id: str) -> bool:
        """The item leaves the catalogue; its events stay (history) and the next build ignores them."""
        return bool(self.conn.execute(items_table.delete().where(items_table.c.item_id == item_id)).rowcount)


class SqlStore:
    """SQLAlchemy-backed store; every write happens inside one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

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

    def events_frame(self, types: Sequence[EventType] | None = None) -> pd.DataFrame:
        query = sa.select(*[events_table.c[c] for c in EVENT_COLUMNS]).order_by(events_table.c.timestamp)
        if types:
            query = query.where(events_table.c.type.in_([t.value for t in types]))
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=EVENT_COLUMNS)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame

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
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _item_from_row(row: Any) -> Item:
    data = {k: v for k, v in dict(row).items() if k not in ("category_path", "content_hash")}
    for field in ("created_at", "updated_at"):
        if isinstance(data[field], datetime) and data[field].tzinfo is None:
            data[field] = data[field].replace(tzinfo=UTC)
    return Item(**data)


def open_store(url: str) -> Store:
    return SqlStore(url)
