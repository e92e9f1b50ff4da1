"""The engine a server answers with, swapped atomically after a retrain or a rollback, and the item writes
served on top of it until the next build."""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from shopfusion.catalog.schema import Item
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.catalog.store import open_store
from shopfusion.encoders import CachedEncoder, EmbeddingCache
from shopfusion.engine import Engine
from shopfusion.pipeline import build
from shopfusion.results import ResultItem
from shopfusion.search.service import SearchError, SearchResponse, SearchService
from shopfusion.workspace import Workspace

ItemWrite = tuple[Item, np.ndarray] | str  # an item written with its text embedding, or a deleted item's id
SESSION_ITEMS = 20  # recent items kept per session
MAX_SESSIONS = 100_000  # sessions kept, the least recently active dropped first


def settle_heap() -> None:
    """Hide the loaded models' millions of long-lived objects from the cyclic garbage collector: otherwise
    every full collection walks them all, and answers computed under load (whose results live on in the
    response cache) trigger such collections often — measured here, recommend p99 at 50 concurrent requests
    went from 194 ms to 21 ms. Frozen objects are still freed by reference counting when a swap drops them."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def parse_filters(raw: Sequence[str]) -> dict[str, list[str]]:
    """Repeated `filter=FIELD:VALUE` parameters; a field given several times matches any of its values."""
    filters: dict[str, list[str]] = {}
    for text in raw:
        name, sep, value = text.partition(":")
        if not sep or not name.strip():
            raise SearchError(f"filter {text!r}: expected FIELD:VALUE, e.g. category:Home or price:10..50")
        filters.setdefault(name.strip(), []).append(value)
    return filters


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


@dataclass
class RetrainStatus:
    running: bool = False
    last_version: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Served:
    """One consistent view for a request: a loaded engine and the item writes since its build. Search
    answers from indexes with the writes applied; recommendation models know only the built catalogue, so
    their results drop items deleted since and show changed items as they are now."""

    engine: Engine
    search_service: SearchService
    changed: frozenset[str] = field(default_factory=frozenset)  # ids written or deleted since the build

    @classmethod
    def of(cls, engine: Engine) -> Served:
        return cls(engine, engine.search_service)

    @property
    def catalog(self) -> CatalogSnapshot:
        return self.search_service.catalog

    @property
    def item_count(self) -> int:
        writes = self.search_service.writes
        return len(self.catalog) - (len(writes.deleted) if writes else 0)

    def position(self, item_id: str) -> int | None:
        """The item's catalogue position; None if it is unknown or deleted."""
        return self.search_service.live_position(item_id)

    def apply(self, write: ItemWrite) -> Served:
        if isinstance(write, str):
            return Served(self.engine, self.search_service.without_item(write), self.changed | {write})
        item, vector = write
        return Served(self.engine, self.search_service.with_item(item, vector), self.changed | {item.item_id})

    def _current(self, recommend: Callable[[int], list[ResultItem]], k: int) -> list[ResultItem]:
        """Ask for k more than the number of deleted items, drop those and show changed ones as they are now."""
        writes = self.search_service.writes
        results = recommend(k + (len(writes.deleted) if writes else 0))
        out = []
        for result in results:
            if result.item_id in self.changed:
                position = self.position(result.item_id)
                if position is None:
                    continue
                result = self.catalog.result(position, result.score, result.reason, result.signals)
            out.append(result)
        return out[:k]

    def search(
        self,
        query: str,
        k: int,
        *,
        filters: Mapping[str, str | Sequence[str]],
        sort: str = "relevance",
        page: int = 1,
        facets: Sequence[str],
        user_id: str | None = None,
        session: Sequence[str] = (),
    ) -> SearchResponse:
        """Search with the item writes applied, personalised by the recent items of the user (a stored key) and
        of the session; raises SearchError for a request it cannot answer."""
        profile = self.engine.profile(user_id, session)
        return self.search_service.search(
            query, k, filters=filters, sort=sort, page=page, facets=facets, profile=profile
        )

    def recommend_user(self, user_id: str, k: int = 10) -> list[ResultItem]:
        return self._current(lambda n: self.engine.recommend_user(user_id, n), k)

    def recommend_session(self, item_ids: list[str], k: int = 10) -> list[ResultItem]:
        return self._current(lambda n: self.engine.recommend_session(item_ids, n), k)

    def _is_new(self, item_id: str) -> bool:
        return self.engine.catalog.position(item_id) is None

    def similar_items(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Raises KeyError for an unknown or deleted item; an item added since the build gets its nearest
        items by text."""
        if self.position(item_id) is None:
            raise KeyError(f"unknown item {item_id!r}")
        if self._is_new(item_id):
            return self.search_service.similar_to_written(item_id, k)
        return self._with_added(item_id, self._current(lambda n: self.engine.similar_items(item_id, n), k), k)

    def _with_added(self, item_id: str, results: list[ResultItem], k: int) -> list[ResultItem]:
        """Items created since the build join a built item's similar items by text: each goes in before the
        first neighbour whose text is less close to the item than its own (and so pushes out the last)."""
        service, anchor_position, added = (
            self.search_service,
            self.position(item_id),
            self.search_service.added_since_build(),
        )
        anchor = service.text_vector(anchor_position) if anchor_position is not None and added else None
        if anchor_position is None or anchor is None:
            return results

        def closeness(position: int | None) -> float:
            vector = service.text_vector(position) if position is not None else None
            return float(vector @ anchor) if vector is not None else -1.0

        merged = [(closeness(self.position(r.item_id)), r) for r in results]
        reason = f"new, similar to “{self.catalog.title(anchor_position)}”"
        for position in added:
            similarity = closeness(position)
            at = next((i for i, (c, _) in enumerate(merged) if c < similarity), len(merged))
            if at < k:
                score = merged[min(at, len(merged) - 1)][1].score if merged else 0.0
                signals = {"surface": "item", "content_score": round(similarity, 4), "added_since_build": True}
                merged.insert(at, (similarity, self.catalog.result(position, score, reason, signals)))
        return [r for _, r in merged[:k]]

    def complements(self, item_id: str, k: int = 10) -> list[ResultItem]:
        """Raises KeyError for an unknown or deleted item; an item added since the build has none yet."""
        if self.position(item_id) is None:
            raise KeyError(f"unknown item {item_id!r}")
        if self._is_new(item_id):
            return []
        return self._current(lambda n: self.engine.complements(item_id, n), k)


class LiveEngine:
    """Requests read `.served` once each; a new engine is fully loaded before it replaces the old one, so no
    request ever sees a half-loaded model and there is no downtime. Item writes go to the store and, at once,
    into a new `Served` view; they are replayed onto an engine loaded later until a build includes them."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.sessions = SessionItems()
        self._writes: list[tuple[int, ItemWrite]] = []  # in order, numbered, since the last build began
        self._sequence = 0
        self._write_lock = threading.Lock()
        self.served: Served
        self._serve(self._load())
        self.status = RetrainStatus(last_version=ws.current_version)
        self._lock = threading.Lock()
        self._again = False

    @property
    def engine(self) -> Engine:
        return self.served.engine

    def _load(self) -> Engine:
        engine = Engine(self.ws)
        engine.search("warm up", 1)  # load the indexes and the encoder before the first request
        return engine

    def _serve(self, engine: Engine, built_after: int | None = None) -> None:
        """Serve `engine` with the item writes it lacks; `built_after`: writes up to that number are in it."""
        with self._write_lock:
            if built_after is not None:
                self._writes = [(n, w) for n, w in self._writes if n > built_after]
            served = Served.of(engine)
            for _, write in self._writes:
                served = served.apply(write)
            self.served = served
        settle_heap()

    def _write(self, write: ItemWrite) -> None:
        """Under the write lock: log the write and serve it from the next request."""
        self._sequence += 1
        self._writes.append((self._sequence, write))
        self.served = self.served.apply(write)

    def put_item(self, item: Item) -> bool:
        """Store the item (new or changed) and serve it from the next request; True if it is new. Its text is
        embedded through the workspace's embedding cache, so the next build reuses the vector."""
        encoder = CachedEncoder(
            self.served.search_service.searcher.encoder, EmbeddingCache(self.ws.embedding_cache_path)
        )
        try:
            vector = encoder.encode([item.text()])[0]
        finally:
            encoder.cache.close()
        with self._write_lock:
            store = open_store(self.ws.store_url())
            try:
                with store.transaction() as tx:
                    created = tx.upsert("items", [(item.item_id, item)]).inserted == 1
            finally:
                store.close()
            self._write((item, vector))
        return created

    def delete_item(self, item_id: str) -> bool:
        """Remove the item from the store and from every answer from the next request; False if unknown."""
        with self._write_lock:
            store = open_store(self.ws.store_url())
            try:
                with store.transaction() as tx:
                    removed = tx.delete_item(item_id)
            finally:
                store.close()
            served = self.served.position(item_id) is not None
            if removed or served:
                self._write(item_id)
        return removed or served

    def reload(self) -> str | None:
        """Serve whatever version the workspace's CURRENT names now (after `shopfusion models rollback`)."""
        self._serve(self._load())
        return self.ws.current_version

    def activate(self, version: str) -> None:
        self.ws.activate(version)
        self.reload()

    def retrain(self) -> bool:
        """Build a new version in a background thread. If one is running already, another build follows it
        (it may have read the store before the latest change) and False is returned."""
        with self._lock:
            if self.status.running:
                self._again = True
                return False
            self.status.running = True
        thread = threading.Thread(target=self._retrain, name="shopfusion-retrain", daemon=True)
        thread.start()
        return True

    def _retrain(self) -> None:
        again = True
        while again:
            try:
                with self._write_lock:
                    started = self._sequence  # writes so far are in the store the build reads
                build(self.ws)
                self._serve(self._load(), built_after=started)
                self.status.last_version = self.ws.current_version
                self.status.last_error = None
            except Exception as exc:  # a failed build leaves the served version untouched
                self.status.last_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                again, self._again = self._again, False
                self.status.running = again
