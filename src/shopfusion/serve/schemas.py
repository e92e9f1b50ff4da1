"""What the HTTP API reads and answers: request and response bodies, and the query-string filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shopfusion.catalog.schema import AttributeValue, Event
from shopfusion.results import ResultItem
from shopfusion.search.service import DEFAULT_FACETS, SearchError, Sort
from shopfusion.serve.runtime import RetrainStatus

USER_NOTE = "Personalise by this user's recent items (stored history and events since the build)"
SESSION_NOTE = "Personalise by this session's items (events posted with this session_id, storefront views)"
IdField = Annotated[str, Field(min_length=1, max_length=256)]


def parse_filters(raw: Sequence[str]) -> dict[str, list[str]]:
    """Repeated `filter=FIELD:VALUE` parameters; a field given several times matches any of its values."""
    filters: dict[str, list[str]] = {}
    for text in raw:
        name, sep, value = text.partition(":")
        if not sep or not name.strip():
            raise SearchError(f"filter {text!r}: expected FIELD:VALUE, e.g. category:Home or price:10..50")
        filters.setdefault(name.strip(), []).append(value)
    return filters


class ResultOut(BaseModel):
    item_id: str
    title: str
    price: float | None
    category: str
    score: float
    reason: str
    signals: dict[str, Any]


class ResultsOut(BaseModel):
    results: list[ResultOut]

    @classmethod
    def of(cls, results: list[ResultItem]) -> ResultsOut:
        return cls(results=[ResultOut(**asdict(r)) for r in results])


class UnderstoodOut(BaseModel):
    text: str = Field(description="What was searched for once the parts below were taken out of the query")
    filters: dict[str, str] = Field(description="Filters read from the query (price bounds, brand, attributes)")
    category: str | None = Field(description="The category the query most likely means: a hint, not a filter")


class SearchOut(ResultsOut):
    query: str
    total: int = Field(description="Items matched (all pages)")
    page: int
    per_page: int
    sort: str
    facets: dict[str, dict[str, int]] = Field(description="Value counts over all matched items, per facet")
    understood: UnderstoodOut | None = Field(description="How the query was read (null: query understanding off)")


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=1, max_length=500)
    k: int = Field(10, ge=1, le=200, description="Results per page")
    page: int = Field(1, ge=1, le=1000)
    sort: Sort = "relevance"
    filters: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Field → value or alternatives: category (path prefix), brand, price ('MIN..MAX'), "
        "in_stock, or any item attribute",
    )
    facets: list[str] = Field(default_factory=lambda: list(DEFAULT_FACETS), max_length=20)
    user_id: IdField | None = Field(None, description=USER_NOTE)
    session_id: IdField | None = Field(None, description=SESSION_NOTE)


class SessionIn(BaseModel):
    item_ids: list[IdField] = Field(min_length=1, max_length=100)
    k: int = Field(10, ge=1, le=200)


class EventsIn(BaseModel):
    events: list[Event] = Field(min_length=1)


class Accepted(BaseModel):
    accepted: int


class ErasureOut(BaseModel):
    events_removed: int
    retraining: bool


class ModelsOut(BaseModel):
    versions: list[str]
    current: str | None
    retrain: RetrainStatus


class ItemWritten(BaseModel):
    item_id: str
    created: bool


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attributes: dict[str, AttributeValue] = Field(description="Profile attributes, replacing the stored ones")


class UserOut(BaseModel):
    user_id: str
    attributes: dict[str, AttributeValue]
    events: int = Field(description="Events stored for the user")


class Health(BaseModel):
    status: str
    items: int
    built_at: str | None
