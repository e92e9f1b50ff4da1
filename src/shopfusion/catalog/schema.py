"""Typed records for items, users and behaviour events; validation errors name the field and reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_FLOAT_ID = re.compile(r"^(-?\d+)\.0+$")
CATEGORY_SEPARATOR = " > "  # how a category path is written everywhere it is shown or stored
_CATEGORY_SPLIT = re.compile(r"\s*(?:>|/|\|)\s*")  # what it may be read from: "a > b", "a/b", "a|b"


def category_parts(path: str) -> list[str]:
    """A category path as given (any accepted separator) → its non-empty parts."""
    return [p for p in _CATEGORY_SPLIT.split(path) if p]


def category_path(parts: list[str]) -> str:
    return CATEGORY_SEPARATOR.join(parts)


def _clean_id(value: Any) -> Any:
    """Ids arrive as text; '17850.0' (an integer that went through a float column) becomes '17850'."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    match = _FLOAT_ID.match(text)
    return match.group(1) if match else (text or None)


def _parse_timestamp(value: Any) -> Any:
    """ISO date-times, epoch seconds, or an integer order (position in a sequence) all become UTC datetimes."""
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), tz=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_category(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return category_parts(value.strip())
    return value


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Id = Annotated[str, BeforeValidator(_clean_id), Field(min_length=1, max_length=256)]
OptionalId = Annotated[Annotated[str, Field(max_length=256)] | None, BeforeValidator(_clean_id)]
Timestamp = Annotated[datetime, BeforeValidator(_parse_timestamp)]
OptionalTimestamp = Annotated[datetime | None, BeforeValidator(_parse_timestamp)]
OptionalFloat = Annotated[float | None, BeforeValidator(_blank_to_none)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
AttributeValue = str | int | float | bool | list[str]


class FieldError(ValueError):
    """A record-level rule broken by one field; ingestion reports `field` with the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


class EventType(StrEnum):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATING = "rating"
    SEARCH = "search"
    IMPRESSION = "impression"
    RETURN = "return"


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    def key(self) -> str:
        raise NotImplementedError


class Item(Record):
    item_id: Id
    title: Annotated[str, Field(min_length=1, max_length=2000)]
    description: str = ""
    category: Annotated[list[str], BeforeValidator(_parse_category)] = Field(default_factory=list)
    brand: OptionalText = None
    price: Annotated[Annotated[float, Field(ge=0)] | None, BeforeValidator(_blank_to_none)] = None
    currency: Annotated[Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")] | None, BeforeValidator(_blank_to_none)] = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    image: OptionalText = None
    stock: Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(_blank_to_none)] = None
    available: bool = True
    created_at: OptionalTimestamp = None
    updated_at: OptionalTimestamp = None

    def key(self) -> str:
        return self.item_id

    @model_validator(mode="after")
    def _out_of_stock_is_unavailable(self) -> Self:
        if self.stock == 0 and self.available:
            object.__setattr__(self, "available", False)
        return self

    def text(self) -> str:
        """The text a text encoder sees for this item: title first, then its context."""
        parts = [self.title]
        if self.brand:
            parts.append(f"Brand: {self.brand}")
        if self.category:
            parts.append("Category: " + category_path(self.category))
        attrs = "; ".join(f"{k}: {v}" for k, v in self.attributes.items())
        if attrs:
            parts.append(attrs)
        if self.description:
            parts.append(self.description)
        return ". ".join(parts)


class User(Record):
    user_id: Id
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)

    def key(self) -> str:
        return self.user_id


class Event(Record):
    type: EventType
    timestamp: Timestamp
    user_id: OptionalId = None
    session_id: OptionalId = None
    item_id: OptionalId = None
    value: OptionalFloat = None
    quantity: OptionalFloat = None
    query: OptionalText = None
    order_id: OptionalId = None

    @model_validator(mode="after")
    def _check_by_type(self) -> Self:
        if not self.user_id and not self.session_id:
            raise FieldError("user_id", "user_id or session_id is required (anonymous events need a session_id)")
        if self.type is EventType.SEARCH:
            if not self.query:
                raise FieldError("query", "a search event needs a query")
        elif not self.item_id:
            raise FieldError("item_id", f"a {self.type.value} event needs an item_id")
        buying = self.type in (EventType.PURCHASE, EventType.ADD_TO_CART)
        if buying and self.quantity is not None and self.quantity <= 0:
            raise FieldError(
                "quantity",
                f"{self.type.value} quantity must be > 0, got {self.quantity:g} (a cancellation or return?)",
            )
        if self.type is EventType.PURCHASE and self.value is not None and self.value < 0:
            raise FieldError("value", f"purchase value (price) must be >= 0, got {self.value:g}")
        if self.type is EventType.RATING and self.value is None:
            raise FieldError("value", "a rating event needs a value")
        return self

    def key(self) -> str:
        raise TypeError("events are keyed by content and occurrence: see catalog.ingest.event_keys")


RECORD_TYPES: dict[str, type[Record]] = {"items": Item, "users": User, "events": Event}
