"""Answers repeated reads from memory. Shop traffic repeats itself (the same popular queries, the same
shopper reloading a page), and an answer from memory costs a dictionary lookup instead of a ranking run —
the way Gorse serves recommendation lists from a cache and search engines keep a request cache."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass

from cachetools import LRUCache, TTLCache

STALE_FACTOR = 6  # a stale answer is served only while its refresh runs, so only overload makes it this old


@dataclass(frozen=True)
class Cached:
    body: bytes
    stale: bool  # older than the freshness limit: serve it, and compute it again in the background


class ResponseCache:
    """The JSON of search and recommendation responses, kept while it is still the answer the engine would
    give now:

    - per view of the engine: an item write, a retrain or a rollback serves a new view, and the cache starts
      afresh (`key`);
    - per owner: a response computed for a user holds the user's epoch, which an event (or an erasure) of that
      user moves on, so their next request is computed again and shows the event at once (`touch`);
    - fresh for about `fresh_seconds` (each entry ±20 %, so entries filled together do not expire together),
      because everyone's events move the popularity and trending counters that every answer mixes in a
      little; then served while one background refresh computes it again (stale-while-revalidate), so a busy
      key never makes a request wait, up to STALE_FACTOR times that age; older, computed before answering.

    A session's items are part of the key of a request that uses them, so they need no epoch."""

    def __init__(self, max_entries: int, fresh_seconds: float) -> None:
        self.enabled = max_entries > 0 and fresh_seconds > 0
        self._fresh_ns = int(fresh_seconds * 1e9)
        self._random = random.Random(0)
        size = max(max_entries, 1)
        self._entries: LRUCache[Hashable, tuple[int, int, bytes]] = LRUCache(maxsize=size)  # filled, fresh for
        # An epoch must outlive every response computed before it moved (served up to STALE_FACTOR x
        # fresh_seconds old); after that forgetting it is safe.
        self._epochs: TTLCache[str, int] = TTLCache(
            maxsize=10 * size, ttl=max(1.2 * STALE_FACTOR * fresh_seconds, 1e-3)
        )
        self._refreshing: set[Hashable] = set()
        self._view: object | None = None
        self._lock = threading.Lock()

    def key(self, view: object, owner: str | None, *request: Hashable) -> Hashable:
        """The cache key of a request answered from `view` for `owner` (a user key, or None)."""
        with self._lock:
            if view is not self._view:
                self._entries.clear()
                self._view = view
            epoch = self._epochs.get(owner, 0) if owner is not None else 0
        return (owner, epoch, *request)

    def get(self, key: Hashable) -> Cached | None:
        """The cached body; `stale` is set on the one lookup that should start a refresh."""
        if not self.enabled:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            filled, fresh_ns, body = found
            age = time.monotonic_ns() - filled
            if age <= fresh_ns:
                return Cached(body, stale=False)
            if age > STALE_FACTOR * fresh_ns:
                del self._entries[key]
                return None
            refresh = key not in self._refreshing
            self._refreshing.add(key)
            return Cached(body, stale=refresh)

    def put(self, view: object, key: Hashable, body: bytes) -> None:
        """Keep `body`, unless the view it was computed from is no longer served."""
        with self._lock:
            self._refreshing.discard(key)
            if self.enabled and view is self._view:
                fresh_ns = int(self._fresh_ns * self._random.uniform(0.8, 1.2))
                self._entries[key] = (time.monotonic_ns(), fresh_ns, body)

    def release(self, key: Hashable) -> None:
        """A refresh failed: let a later lookup try again."""
        with self._lock:
            self._refreshing.discard(key)

    def touch(self, owner: str) -> None:
        """The owner's state changed (an event, an erasure): their cached responses are no longer served."""
        with self._lock:
            self._epochs[owner] = time.monotonic_ns()
