"""The result record every surface (search, recommendations, similar items) returns, with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResultItem:
    item_id: str
    title: str
    price: float | None
    category: str
    score: float
    reason: str
    signals: dict[str, Any] = field(default_factory=dict)
