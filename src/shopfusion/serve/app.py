"""The HTTP API (FastAPI): search, recommendations, events, items and users, user erasure, health and
Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from shopfusion.catalog.privacy import user_key_function
from shopfusion.catalog.schema import AttributeValue, Event, Item, User
from shopfusion.catalog.store import open_store
from shopfusion.results import ResultItem
from shopfusion.search.service import DEFAULT_FACETS, SearchError, Sort
from shopfusion.serve.auth import KEYS_FILE, KeyStore, RateLimiter, Scope
from shopfusion.serve.cache import ResponseCache
from shopfusion.serve.limits import BodySizeLimit
from shopfusion.serve.models import LiveEngine, RetrainStatus, Served, parse_filters
from shopfusion.serve.telemetry import ObserveRequests, Telemetry
from shopfusion.serve.web import mount_web
from shopfusion.workspace import Workspace, WorkspaceError


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


USER_NOTE = "Personalise by this user's recent items (stored history and events since the build)"
SESSION_NOTE = "Personalise by this session's items (events posted with this session_id, storefront views)"
IdField = Annotated[str, Field(min_length=1, max_length=256)]


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


KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key from `shopfusion keys create`")


def _out(results: list[ResultItem]) -> ResultsOut:
    return ResultsOut(results=[ResultOut(**asdict(r)) for r in results])


def limit_native_threads() -> None:
    """One BLAS/OpenMP/torch thread per request thread: with many concurrent requests, nested thread
    pools oversubscribe the cores (measured here: 20 concurrent searches fell from ~820 to ~35 req/s)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def create_app(workspace: Path, *, anonymous_read: bool = False) -> FastAPI:
    """`anonymous_read` lets callers without a key search and read recommendations (the storefront demo)."""
    ws = Workspace.open(workspace)
    settings = ws.settings
    live = LiveEngine(ws)
    keys = KeyStore(ws.root / KEYS_FILE)
    user_key = user_key_function(ws)
    limiter = RateLimiter()
    telemetry = Telemetry()
    cache = ResponseCache(settings.serve.cache_entries, settings.serve.cache_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.serve.threads
        yield

    app = FastAPI(
        title="ShopFusion",
        version="0.1.0",
        description="Product search and recommendations, explained.",
        lifespan=lifespan,
    )

    def require(scope: Scope) -> Callable[[Request, str | None], Awaitable[None]]:
        async def check(request: Request, api_key: Annotated[str | None, Depends(KEY_HEADER)]) -> None:
            if api_key is None and anonymous_read and scope is Scope.READ:
                caller = f"anon:{request.client.host if request.client else '?'}"
                rate = settings.serve.rate_per_minute
            else:
                if api_key is None:
                    raise HTTPException(401, "missing API key (send it in the X-API-Key header)")
                key = keys.verify(api_key)
                if key is None:
                    raise HTTPException(401, "invalid API key")
                if not key.allows(scope):
                    raise HTTPException(403, f"this key lacks the '{scope.value}' scope")
                caller, rate = key.key_id, key.rate_per_minute or settings.serve.rate_per_minute
            if not limiter.allow(caller, rate):
                raise HTTPException(429, "rate limit exceeded", headers={"Retry-After": "1"})

        return check

    read, write, admin = (Depends(require(s)) for s in (Scope.READ, Scope.WRITE, Scope.ADMIN))

    @app.exception_handler(SearchError)
    async def unanswerable(_: Request, exc: SearchError) -> JSONResponse:
        """A search it cannot answer as asked (empty query, unknown filter or facet, bad range) says why."""
        return JSONResponse({"detail": str(exc)}, status_code=422)

    app.add_middleware(BodySizeLimit, max_bytes=settings.serve.max_body_bytes)

    app.add_middleware(ObserveRequests, telemetry=telemetry)

    @app.get("/health")
    async def health() -> Health:
        served = live.served
        return Health(status="ok", items=served.item_count, built_at=str(served.engine.manifest.get("built_at")))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)

    refreshes: set[asyncio.Task[None]] = set()  # background refreshes of stale responses, kept referenced
    # one refresh at a time: they queue behind each other instead of taking every thread from the requests
    # that must wait for an answer
    refresh_limiter = anyio.CapacityLimiter(1)

    async def compute(
        served: Served,
        key: Hashable,
        answer: Callable[[Served], BaseModel],
        limiter: anyio.CapacityLimiter | None = None,
    ) -> bytes:
        try:
            model = await anyio.to_thread.run_sync(answer, served, limiter=limiter)
            body = model.model_dump_json().encode()
        except BaseException:
            cache.release(key)
            raise
        cache.put(served, key, body)
        return body

    async def refresh(served: Served, key: Hashable, answer: Callable[[Served], BaseModel]) -> None:
        with contextlib.suppress(Exception):  # the stale answer was served; a later request retries
            await compute(served, key, answer, refresh_limiter)

    async def cached(
        owner: str | None, request: tuple[Hashable, ...], answer: Callable[[Served], BaseModel]
    ) -> Response:
        """The response from the cache, or answered from one consistent view off the event loop and kept."""
        served = live.served
        key = cache.key(served, owner, *request)
        found = cache.get(key)
        telemetry.cache_lookups.labels("miss" if found is None else "stale" if found.stale else "hit").inc()
        if found is None:
            return Response(await compute(served, key, answer), media_type="application/json")
        if found.stale:
            task = asyncio.create_task(refresh(served, key, answer))
            refreshes.add(task)
            task.add_done_callback(refreshes.discard)
        return Response(found.body, media_type="application/json")

    async def search(
        q: str,
        k: int,
        page: int,
        sort: str,
        filters: Mapping[str, str | Sequence[str]],
        facets: Sequence[str],
        user_id: str | None,
        session_id: str | None,
    ) -> Response:
        owner = user_key(user_id) if user_id else None
        session = tuple(live.sessions.items(session_id)) if session_id else ()
        frozen_filters = tuple(sorted((f, v if isinstance(v, str) else tuple(v)) for f, v in filters.items()))

        def answer(served: Served) -> SearchOut:
            response = served.search(
                q, k, filters=filters, sort=sort, page=page, facets=facets, user_id=owner, session=session
            )
            return SearchOut(**response.as_dict())

        return await cached(owner, ("search", q, k, page, sort, frozen_filters, tuple(facets), session), answer)

    @app.get("/search", dependencies=[read], response_model=SearchOut)
    async def search_get(
        q: Annotated[str, Query(min_length=1, max_length=500)],
        k: Annotated[int, Query(ge=1, le=200, description="Results per page")] = 10,
        page: Annotated[int, Query(ge=1, le=1000)] = 1,
        sort: Sort = "relevance",
        filters: Annotated[
            list[str] | None, Query(alias="filter", description="FIELD:VALUE, repeatable: category:Home, price:10..50")
        ] = None,
        facets: Annotated[str, Query(description="Comma-separated facet fields")] = ",".join(DEFAULT_FACETS),
        user_id: Annotated[str | None, Query(min_length=1, max_length=256, description=USER_NOTE)] = None,
        session_id: Annotated[str | None, Query(min_length=1, max_length=256, description=SESSION_NOTE)] = None,
    ) -> Response:
        """Keyword + meaning search with filters, facets, sorting and pages, personalised by the recent items
        of `user_id` and `session_id`; price bounds, brands and attribute values in the query become filters
        (`understood`). Every result explains itself."""
        facet_names = [f.strip() for f in facets.split(",") if f.strip()]
        return await search(q, k, page, sort, parse_filters(filters or []), facet_names, user_id, session_id)

    @app.post("/search", dependencies=[read], response_model=SearchOut)
    async def search_post(body: SearchIn) -> Response:
        """As GET /search, with filters as a JSON object."""
        return await search(
            body.q, body.k, body.page, body.sort, body.filters, body.facets, body.user_id, body.session_id
        )

    @app.get("/recommendations/user/{user_id}", dependencies=[read], response_model=ResultsOut)
    async def for_user(user_id: str, k: Annotated[int, Query(ge=1, le=200)] = 10) -> Response:
        owner = user_key(user_id)
        return await cached(owner, ("user", k), lambda served: _out(served.recommend_user(owner, k)))

    @app.get("/recommendations/item/{item_id}", dependencies=[read], response_model=ResultsOut)
    async def for_item(
        item_id: str,
        k: Annotated[int, Query(ge=1, le=200)] = 10,
        kind: Annotated[
            Literal["similar", "complements"], Query(description="similar items, or frequently bought together")
        ] = "similar",
    ) -> Response:
        def answer(served: Served) -> ResultsOut:
            try:
                return _out(served.similar_items(item_id, k) if kind == "similar" else served.complements(item_id, k))
            except KeyError as exc:
                raise HTTPException(404, f"unknown item {item_id!r}") from exc

        return await cached(None, ("item", item_id, k, kind), answer)

    @app.post("/recommendations/session", dependencies=[read], response_model=ResultsOut)
    async def for_session(body: SessionIn) -> Response:
        items = tuple(body.item_ids)
        return await cached(None, ("session", items, body.k), lambda s: _out(s.recommend_session(list(items), body.k)))

    @app.post("/events", dependencies=[write])
    def post_events(body: Event | EventsIn) -> Accepted:
        events = [
            e.model_copy(update={"user_id": user_key(e.user_id)}) if e.user_id else e
            for e in (body.events if isinstance(body, EventsIn) else [body])
        ]
        if len(events) > settings.serve.max_batch_events:
            raise HTTPException(413, f"at most {settings.serve.max_batch_events} events per request")
        store = open_store(ws.store_url(settings))
        try:
            with store.transaction() as tx:
                tx.upsert("events", [(uuid.uuid4().hex, e) for e in events])  # each post is a new occurrence
        finally:
            store.close()
        recommender = live.engine.recommend_service
        for event in events:
            if event.user_id and event.item_id:
                recommender.record(event.user_id, event.item_id, event.type.value)
            if event.session_id and event.item_id:
                live.sessions.add(event.session_id, event.item_id)
        for user in {e.user_id for e in events if e.user_id}:
            cache.touch(user)
        return Accepted(accepted=len(events))

    @app.get("/items/{item_id}", dependencies=[read])
    def get_item(item_id: str) -> Item:
        store = open_store(ws.store_url(settings))
        try:
            found = store.get_items([item_id]).get(item_id)
        finally:
            store.close()
        if found is None:
            raise HTTPException(404, f"unknown item {item_id!r}")
        return found

    @app.put("/items/{item_id}", dependencies=[write])
    def put_item(item_id: str, item: Item, response: Response) -> ItemWritten:
        """Create or replace an item. It is stored, searchable and recommendable (by text similarity) from the
        next request, without a rebuild; the next build merges it into the models."""
        if item.item_id != item_id:
            raise HTTPException(422, f"item_id in the body ({item.item_id!r}) differs from the path ({item_id!r})")
        created = live.put_item(item)
        response.status_code = 201 if created else 200
        return ItemWritten(item_id=item_id, created=created)

    @app.delete("/items/{item_id}", dependencies=[write], status_code=204)
    def delete_item(item_id: str) -> None:
        """Remove an item from the store and from every search and recommendation from the next request."""
        if not live.delete_item(item_id):
            raise HTTPException(404, f"unknown item {item_id!r}")

    @app.get("/users/{user_id}", dependencies=[write])
    def get_user(user_id: str) -> UserOut:
        """A user's profile and stored event count (personal data: needs the write scope)."""
        key = user_key(user_id)
        store = open_store(ws.store_url(settings))
        try:
            profile, events = store.get_user(key), store.count_user_events(key)
        finally:
            store.close()
        if profile is None and not events:
            raise HTTPException(404, f"unknown user {user_id!r}")
        return UserOut(user_id=user_id, attributes=profile.attributes if profile else {}, events=events)

    @app.put("/users/{user_id}", dependencies=[write])
    def put_user(user_id: str, body: UserIn) -> UserOut:
        """Create or replace a user's profile attributes (stored under the pseudonym when that is on)."""
        key = user_key(user_id)
        store = open_store(ws.store_url(settings))
        try:
            with store.transaction() as tx:
                tx.upsert("users", [(key, User(user_id=key, attributes=body.attributes))])
            events = store.count_user_events(key)
        finally:
            store.close()
        return UserOut(user_id=user_id, attributes=body.attributes, events=events)

    @app.delete("/users/{user_id}", dependencies=[admin])
    def erase_user(user_id: str) -> ErasureOut:
        """Remove the user's events and profile from the store, stop serving from their history at once,
        and rebuild the models in the background so that nothing learned from them remains."""
        key = user_key(user_id)
        store = open_store(ws.store_url(settings))
        try:
            with store.transaction() as tx:
                removed = tx.delete_user(key)
        finally:
            store.close()
        live.engine.recommend_service.forget(key)
        cache.touch(key)
        retraining = live.retrain() if removed else False
        return ErasureOut(events_removed=removed, retraining=retraining or live.status.running)

    @app.get("/admin/models", dependencies=[admin])
    def list_models() -> ModelsOut:
        return ModelsOut(versions=ws.model_versions(), current=ws.current_version, retrain=live.status)

    @app.post("/admin/retrain", dependencies=[admin], status_code=202)
    def retrain() -> ModelsOut:
        """Rebuild from the store in the background; the new version is served once it is fully loaded."""
        if not live.retrain():
            raise HTTPException(409, "a retrain is already running")
        return list_models()

    @app.post("/admin/models/{version}/activate", dependencies=[admin])
    def activate(version: str) -> ModelsOut:
        """Roll back (or forward) to a kept version."""
        try:
            live.activate(version)
        except WorkspaceError as exc:
            raise HTTPException(404, str(exc)) from exc
        return list_models()

    @app.post("/admin/reload", dependencies=[admin])
    def reload() -> ModelsOut:
        live.reload()
        return list_models()

    mount_web(app, live, ws, keys, telemetry)
    return app
