"""Ingestion: CSV/TSV/JSONL/Parquet (gzipped or not) → validated records → one store transaction.

Bad rows never stop a load: each goes to a rejects file with its row number, field and reason,
and every valid row is kept. The whole file is one transaction, so a crash leaves the store as it was.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import tomllib
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from pydantic import ValidationError

from shopfusion.catalog.schema import RECORD_TYPES, Event, FieldError, Record
from shopfusion.catalog.store import EVENT_COLUMNS, Store, UpsertCounts, content_hash
from shopfusion.workspace import atomic_path

BATCH_ROWS = 5_000
Row = Mapping[Hashable, Any]  # one record of a frame, keyed by its column labels
KINDS = tuple(RECORD_TYPES)
# Common column names that map themselves when no mapping names the field (matched case-insensitively).
ALIASES = {
    "type": ("event", "event_type"),
    "item_id": ("product_id", "sku"),
    "title": ("name", "product_name"),
    "timestamp": ("time", "ts", "date"),
}


class IngestError(ValueError):
    """The input as a whole cannot be read (unknown format, missing column): nothing was loaded."""


@dataclass
class ColumnMapping:
    """How source columns become record fields: explicit columns, constants, and attribute columns."""

    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    attribute_columns: list[str] = field(default_factory=list)
    extra_as_attributes: bool | None = None

    @classmethod
    def from_toml(cls, path: Path) -> ColumnMapping:
        data = tomllib.loads(path.read_text())
        unknown = set(data) - {"columns", "constants", "attributes", "extra_as_attributes"}
        if unknown:
            raise IngestError(f"{path}: unknown mapping sections {sorted(unknown)}")
        return cls(
            columns=dict(data.get("columns", {})),
            constants=dict(data.get("constants", {})),
            attribute_columns=list(data.get("attributes", [])),
            extra_as_attributes=data.get("extra_as_attributes"),
        )

    def merged(self, other: ColumnMapping) -> ColumnMapping:
        """`other` (e.g. CLI flags) wins over self (e.g. a mapping file)."""
        return ColumnMapping(
            columns={**self.columns, **other.columns},
            constants={**self.constants, **other.constants},
            attribute_columns=[*self.attribute_columns, *other.attribute_columns],
            extra_as_attributes=(
                other.extra_as_attributes if other.extra_as_attributes is not None else self.extra_as_attributes
            ),
        )


@dataclass(frozen=True)
class ResolvedMapping:
    columns: dict[str, str]
    constants: dict[str, Any]
    attribute_columns: list[str]
    ignored_columns: list[str]


def resolve_mapping(kind: str, mapping: ColumnMapping, source_columns: list[str]) -> ResolvedMapping:
    """Check the mapping against the record type and the file's header; same-named columns map themselves."""
    model = RECORD_TYPES[kind]
    fields = set(model.model_fields)
    for name in [*mapping.columns, *mapping.constants]:
        if name not in fields:
            raise IngestError(f"unknown {kind} field {name!r} in mapping (fields: {', '.join(sorted(fields))})")
    by_lower = {c.lower(): c for c in source_columns}
    columns: dict[str, str] = {}
    for name in fields - set(mapping.constants):
        found = [by_lower[c] for c in (name, *ALIASES.get(name, ())) if c in by_lower]
        if found:
            columns[name] = found[0]
    columns.update(mapping.columns)
    missing = [f"{f} <- {c!r}" for f, c in columns.items() if c not in source_columns]
    missing += [f"attributes <- {c!r}" for c in mapping.attribute_columns if c not in source_columns]
    if missing:
        raise IngestError(f"mapped columns not in the file: {', '.join(missing)}; file has {source_columns}")
    used = set(columns.values()) | set(mapping.attribute_columns)
    extra = [c for c in source_columns if c not in used]
    extra_as_attributes = mapping.extra_as_attributes
    if extra_as_attributes is None:
        extra_as_attributes = kind in ("items", "users")
    attribute_columns = list(mapping.attribute_columns)
    if extra_as_attributes and "attributes" in fields and "attributes" not in columns:
        attribute_columns += extra
        extra = []
    return ResolvedMapping(columns, dict(mapping.constants), attribute_columns, extra)


def read_frames(path: Path, chunk_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """Stream a file in chunks, all values as text or None, whatever its format."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".csv", ".tsv", ".txt")):
        sep = "\t" if name.endswith(".tsv") else ","
        reader = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, chunksize=chunk_rows, compression="infer")
        yield from reader
    elif name.endswith((".jsonl", ".ndjson", ".json")):
        yield from pd.read_json(path, lines=True, dtype=False, chunksize=chunk_rows, compression="infer")
    elif name.endswith(".parquet"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        raise IngestError(f"{path}: unsupported format (use .csv, .tsv, .jsonl, .parquet, optionally .gz)")


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and not value.strip())


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def row_to_fields(row: Row, mapping: ResolvedMapping) -> dict[str, Any]:
    data: dict[str, Any] = {f: _jsonable(row[c]) for f, c in mapping.columns.items() if _present(row[c])}
    for name, value in mapping.constants.items():
        data.setdefault(name, value)
    if mapping.attribute_columns:
        attrs = {c: _jsonable(row[c]) for c in mapping.attribute_columns if _present(row[c])}
        if attrs:
            data["attributes"] = {**data.get("attributes", {}), **attrs}
    return data


@dataclass(frozen=True)
class Reject:
    row: int
    field: str
    reason: str
    raw: str


def validation_rejects(row_number: int, error: ValidationError, raw: Row) -> list[Reject]:
    raw_text = json.dumps({k: _jsonable(v) for k, v in raw.items() if _present(v)}, default=str)
    rejects = []
    for err in error.errors():
        cause = err.get("ctx", {}).get("error")
        where = ".".join(str(p) for p in err["loc"]) or (cause.field if isinstance(cause, FieldError) else "")
        reason = str(cause) if cause is not None else err["msg"]
        if err["type"] == "missing":
            reason = "required field is missing or empty"
        rejects.append(Reject(row_number, where or "(row)", reason, raw_text))
    return rejects


@dataclass
class IngestSummary:
    kind: str
    source: str
    rows: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejects_path: Path | None = None
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return self.counts.inserted

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "rows": self.rows,
            "loaded": self.counts.inserted,
            "updated": self.counts.updated,
            "unchanged": self.counts.unchanged,
            "rejected": self.rejected,
            "reject_reasons": dict(self.reasons.most_common(10)),
            "rejects_file": str(self.rejects_path) if self.rejects_path else None,
            "ignored_columns": self.ignored_columns,
        }


def _event_key(record: Record, seen: Counter[str]) -> str:
    """Events have no natural id: their content plus how often that content already occurred in this file.

    Re-ingesting a file yields the same keys (idempotent) while true duplicate rows stay distinct.
    """
    digest = content_hash(record)
    occurrence = seen[digest]
    seen[digest] += 1
    return hashlib.sha1(f"{digest}:{occurrence}".encode()).hexdigest()


def validated_batches(
    kind: str,
    path: Path,
    mapping: ColumnMapping | None,
    summary: IngestSummary,
    rejects: list[Reject],
    user_key: Callable[[str], str] = str,
) -> Iterator[list[Record]]:
    """The valid records of each chunk of `path`; invalid rows go to `rejects`, rows and rejects are counted in
    `summary`. Shared by `ingest_file` and readers that validate a file without storing it."""
    if kind not in RECORD_TYPES:
        raise IngestError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    model = RECORD_TYPES[kind]
    resolved: ResolvedMapping | None = None
    for frame in read_frames(path):
        if resolved is None:
            resolved = resolve_mapping(kind, mapping or ColumnMapping(), [str(c) for c in frame.columns])
            summary.ignored_columns = resolved.ignored_columns
        records: list[Record] = []
        for raw in frame.to_dict("records"):
            summary.rows += 1
            try:
                record = model(**row_to_fields(raw, resolved))
                user_id = getattr(record, "user_id", None)
                if user_id is not None and user_key is not str:
                    record = record.model_copy(update={"user_id": user_key(user_id)})
            except ValidationError as error:
                rejects.extend(validation_rejects(summary.rows, error, raw))
                summary.rejected += 1
                continue
            records.append(record)
        yield records


def _report_rejects(summary: IngestSummary, rejects: list[Reject], rejects_dir: Path | None) -> None:
    for reject in rejects:
        summary.reasons[f"{reject.field}: {_reason_class(reject.reason)}"] += 1
    if rejects and rejects_dir is not None:
        summary.rejects_path = write_rejects(rejects_dir, Path(summary.source), summary.kind, rejects)


def ingest_file(
    store: Store,
    kind: str,
    path: Path,
    mapping: ColumnMapping | None = None,
    rejects_dir: Path | None = None,
    user_key: Callable[[str], str] = str,
) -> IngestSummary:
    """Load one file in one transaction; `user_key` maps user ids to what is stored (see catalog.privacy)."""
    summary = IngestSummary(kind=kind, source=str(path))
    rejects: list[Reject] = []
    seen: Counter[str] = Counter()
    batches = validated_batches(kind, path, mapping, summary, rejects, user_key)
    with store.transaction() as writer:
        for records in batches:
            keyed = [(_event_key(r, seen) if kind == "events" else r.key(), r) for r in records]
            summary.counts += writer.upsert(kind, keyed)
    _report_rejects(summary, rejects, rejects_dir)
    return summary


def read_events(
    path: Path, mapping: ColumnMapping | None = None, rejects_dir: Path | None = None
) -> tuple[pd.DataFrame, IngestSummary]:
    """An events file validated as `ingest events` validates it, but kept in memory instead of stored: the valid
    events with the columns of `Store.events_frame()` (`loaded` in the summary counts them), rejects reported."""
    summary = IngestSummary(kind="events", source=str(path))
    rejects: list[Reject] = []
    rows = [
        {**record.model_dump(), "type": record.type.value}
        for records in validated_batches("events", path, mapping, summary, rejects)
        for record in records
        if isinstance(record, Event)
    ]
    summary.counts.inserted = len(rows)
    _report_rejects(summary, rejects, rejects_dir)
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame, summary


def _reason_class(reason: str) -> str:
    """Group reasons that differ only by the offending value, for the summary."""
    return reason.split(", got")[0].split(": ")[0]


def write_rejects(rejects_dir: Path, source: Path, kind: str, rejects: list[Reject]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    stem = source.name.split(".")[0]
    target = rejects_dir / f"{stem}.{kind}.{stamp}.rejects.csv"
    with atomic_path(target) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "field", "reason", "raw"])
        writer.writerows((r.row, r.field, r.reason, r.raw) for r in rejects)
    return target
