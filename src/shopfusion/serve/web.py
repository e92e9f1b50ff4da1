"""Server-rendered storefront and admin dashboard, served by the API process itself."""

from __future__ import annotations

import secrets
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from shopfusion.catalog.schema import Event, EventType
from shopfusion.catalog.store import open_store
from shopfusion.results import ResultItem
from shopfusion.serve.auth import KeyStore, Scope
from shopfusion.serve.models import LiveEngine
from shopfusion.serve.telemetry import Telemetry
from shopfusion.workspace import Workspace

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
SESSION_COOKIE = "sf_session"
ADMIN_COOKIE = "sf_admin"
RECENT_VIEWS = 20


class Sessions:
    """Recently viewed items per anonymous shopper: the 'for you' panel reacts to the very next page."""

    def __init__(self) -> None:
        self._views: dict[str, deque[str]] = {}

    def viewed(self, session_id: str) -> list[str]:
        return list(self._views.get(session_id, ()))

    def add(self, session_id: str, item_id: str) -> None:
        views = self._views.setdefault(session_id, deque(maxlen=RECENT_VIEWS))
        if item_id in views:
            views.remove(item_id)
        views.append(item_id)


def mount_web(app: FastAPI, live: LiveEngine, ws: Workspace, keys: KeyStore, telemetry: Telemetry) -> None:
    sessions = Sessions()

    def session_of(request: Request) -> str:
        return request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(12)

    def for_you(session_id: str) -> tuple[list[str], list[ResultItem]]:
        served = live.served
        viewed = sessions.viewed(session_id)
        if viewed:
            return viewed, served.recommend_session(viewed, 6)
        return viewed, served.recommend_user(f"anonymous:{session_id}", 6)

    def page(request: Request, template: str, session_id: str, **context: object) -> Response:
        viewed, recommended = for_you(session_id)
        response = TEMPLATES.TemplateResponse(request, template, {"viewed": viewed, "for_you": recommended, **context})
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="lax")
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def shop(request: Request, q: str = "") -> Response:
        query = q.strip()[:200]
        served = live.served
        session_id = session_of(request)
        results = served.search_service.search(query, 24) if query else served.recommend_user("", 24)
        return page(request, "shop.html", session_id, q=query, results=results)

    @app.get("/product/{item_id}", response_class=HTMLResponse, include_in_schema=False)
    def product(request: Request, item_id: str) -> Response:
        served = live.served
        position = served.position(item_id)
        if position is None:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        session_id = session_of(request)
        sessions.add(session_id, item_id)
        _record_view(ws, session_id, item_id)
        item = served.catalog.result(position, 0.0, "")
        return page(request, "product.html", session_id, item=item, similar=served.similar_items(item_id, 8))

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin(request: Request) -> Response:
        key = keys.verify(request.cookies.get(ADMIN_COOKIE, ""))
        if key is None or not key.allows(Scope.ADMIN):
            return TEMPLATES.TemplateResponse(request, "login.html", {"error": None})
        store = open_store(ws.store_url())
        try:
            counts = store.counts()
        finally:
            store.close()
        context = {"counts": counts, "manifest": live.engine.manifest, "live": telemetry.summary(), "keys": keys.list()}
        return TEMPLATES.TemplateResponse(request, "admin.html", context)

    @app.post("/admin/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        plaintext = form.get("key", [""])[0]
        key = keys.verify(plaintext)
        if key is None or not key.allows(Scope.ADMIN):
            error = {"error": "That is not an admin key."}
            return TEMPLATES.TemplateResponse(request, "login.html", error, status_code=401)
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(ADMIN_COOKIE, plaintext, httponly=True, samesite="strict")
        return response


def _record_view(ws: Workspace, session_id: str, item_id: str) -> None:
    event = Event(type=EventType.VIEW, timestamp=datetime.now(UTC), session_id=session_id, item_id=item_id)
    store = open_store(ws.store_url())
    try:
        with store.transaction() as tx:
            tx.upsert("events", [(secrets.token_hex(16), event)])
    finally:
        store.close()
