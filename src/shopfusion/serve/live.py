"""What a server learns between builds, kept in memory beside the served models: each session's recent items,
and each user's events and erasure since the served build read the store."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable

from shopfusion.recommend.service import LiveHistory

SESSION_ITEMS = 20  # recent items kept per session
MAX_SESSIONS = 100_000  # sessions kept, the least recently active dropped first


class SessionItems:
    """The items each session has seen (storefront product views, events posted with a `session_id`), newest
    last: the storefront's 'for you' panel and search personalised by `session_id` read them at once."""

    def __init__(self, per_session: int = SESSION_ITEMS, max_sessions: int = MAX_SESSIONS) -> None:
        self._items: OrderedDict[str, deque[str]] = OrderedDict()
        self._per_session = per_session
        self._max_sessions = max_sessions
        self._lock = threading.Lock()

    def items(self, session_id: str) -> list[str]:
        with self._lock:
            return list(self._items.get(session_id, ()))

    def add(self, session_id: str, item_id: str) -> None:
        with self._lock:
            items = self._items.setdefault(session_id, deque(maxlen=self._per_session))
            self._items.move_to_end(session_id)
            if item_id in items:
                items.remove(item_id)
            items.append(item_id)
            if len(self._items) > self._max_sessions:
                self._items.popitem(last=False)


class LiveHistories:
    """Per user, the events one loaded model version did not see and whether they were erased after its build
    read the store. A new version gets new histories, filled from the store (see `Runtime`)."""

    def __init__(self, erased: Iterable[str] = ()) -> None:
        self._events: dict[str, list[tuple[str, str]]] = {}
        self._erased = set(erased)
        self._lock = threading.Lock()

    def add(self, user_id: str, item_id: str, event_type: str) -> None:
        with self._lock:
            self._events.setdefault(user_id, []).append((item_id, event_type))

    def erase(self, user_id: str) -> None:
        """Their events so far are gone from the store; what the model learned of them no longer serves."""
        with self._lock:
            self._events.pop(user_id, None)
            self._erased.add(user_id)

    def of(self, user_id: str) -> LiveHistory:
        with self._lock:
            return LiveHistory(tuple(self._events.get(user_id, ())), user_id in self._erased)
