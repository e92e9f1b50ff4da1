from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shopfusion.catalog.schema import Event, EventType, Item


def test_item_parses_category_path_and_float_ids() -> None:
    item = Item(item_id=" 17850.0 ", title="Mug", category="Home > Kitchen/Mugs", price="3.5", stock="0")
    assert item.item_id == "17850"
    assert item.category == ["Home", "Kitchen", "Mugs"]
    assert item.price == 3.5
    assert item.available is False  # no stock means not available


def test_item_errors_name_each_field() -> None:
    with pytest.raises(ValidationError) as info:
        Item(item_id="1", title="", price="-2", currency="pounds")
    fields = {e["loc"][0] for e in info.value.errors()}
    assert fields == {"title", "price", "currency"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2011-01-02 03:04:05", datetime(2011, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2011-01-02T03:04:05Z", datetime(2011, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("7", datetime.fromtimestamp(7, tz=UTC)),  # an integer order keeps its order
    ],
)
def test_event_timestamps(raw: str, expected: datetime) -> None:
    event = Event(type="view", timestamp=raw, user_id="u", item_id="i")
    assert event.timestamp == expected


def test_event_rules_name_the_field() -> None:
    cases = {
        "user_id": {"type": "purchase", "item_id": "i"},
        "quantity": {"type": "purchase", "item_id": "i", "user_id": "u", "quantity": "-3"},
        "item_id": {"type": "click", "user_id": "u"},
        "query": {"type": "search", "session_id": "s"},
        "value": {"type": "rating", "user_id": "u", "item_id": "i"},
    }
    for field, data in cases.items():
        with pytest.raises(ValidationError) as info:
            Event(timestamp="2024-01-01", **data)
        cause = info.value.errors()[0]["ctx"]["error"]
        assert cause.field == field, data


def test_anonymous_session_event_and_unknown_type() -> None:
    assert Event(type="view", timestamp="2024-01-01", session_id="s1", item_id="i").type is EventType.VIEW
    with pytest.raises(ValidationError):
        Event(type="teleport", timestamp="2024-01-01", user_id="u", item_id="i")
