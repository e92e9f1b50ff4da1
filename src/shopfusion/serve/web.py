"""Server-rendered storefront and admin dashboard, served by the API process itself (one router)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from shopfusion.build.artifacts import read_manifest
from shopfusion.catalog.schema import Event, EventType
from shopfusion.search.service import SearchError
from shopfusion.serve.auth import Scope
from shopfusion.serve.deps import ServeState, State
from shopfusion.serve.schemas import parse_filters

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
SESSION_COOKIE = "sf_session"
ADMIN_COOKIE = "sf_admin"
PAGE_RESULTS = 24
FACET_VALUES = 10  # values shown per facet, most frequent first (applied ones always)
MAX_FILTERS = 20


def value_label(name: str, value: str) -> str:
    """A filter value as a shopper reads it: 'price' '..5' → 'price up to 5', 'in_stock' 'true' → 'in stock'."""
    if name == "in_stock":
        return "in stock" if value.strip().lower() in {"1", "true", "yes", "y"} else "out of stock"
    if name == "price":
        low, _, high = value.partition("..")
        if low and high:
            return f"price {low} to {high}"
        return f"price up to {high}" if high else f"price from {low}"
    return value


def filter_label(name: str, value: str) -> str:
    return value_label(name, value) if name in ("in_stock", "price") else f"{name}: {value}"


TEMPLATES.env.filters["filter_label"] = filter_label


def _shop_href(query: str, filters: Sequence[str]) -> str:
    return "/?" + urlencode([("q", query), *(("filter", f) for f in filters)])


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    count: int = 0
    active: bool = False


@dataclass(frozen=True)
class Facet:
    name: str
    values: list[Link]


def applied_filters(query: str, applied: Sequence[str]) -> list[Link]:
    """Each applied `FIELD:VALUE` filter with a link that removes it."""
    links = []
    for term in applied:
        name, _, value = term.partition(":")
        links.append(Link(filter_label(name, value), _shop_href(query, [f for f in applied if f != term])))
    return links


def facet_links(query: str, applied: Sequence[str], facets: Mapping[str, Mapping[str, int]], total: int) -> list[Facet]:
    """Facet values as links that add their filter (or remove it, when applied); values every result has
    are left out, as they would not narrow anything."""
    out = []
    for name, counts in facets.items():
        values: list[Link] = []
        for value, count in counts.items():
            term = f"{name}:{value}"
            active = term in applied
            if active or (count < total and len(values) < FACET_VALUES):
                toggled = [f for f in applied if f != term] if active else [*applied, term]
                values.append(Link(value_label(name, value), _shop_href(query, toggled), count, active))
        if values:
            out.append(Facet(name.replace("_", " "), values))
    return out


@dataclass(frozen=True)
class ModelVersion:
    version: str
    served: bool
    manifest: dict[str, object]


@dataclass(frozen=True)
class MethodRow:
    method: str
    default: bool
    values: list[str]


@dataclass(frozen=True)
class EvaluationReport:
    """The methods table of a `shopfusion eval search|recommend --json` report, or why it cannot be shown."""

    path: str
    metrics: list[str]
    rows: list[MethodRow]
    notes: dict[str, str]  # the report's other plain values: k, seconds, ...
    error: str | None = None

    @classmethod
    def load(cls, root: Path, path: str) -> EvaluationReport:
        try:
            report = json.loads((root / path).read_text())
            methods: dict[str, dict[str, Any]] = report["methods"]
            metrics = list(dict.fromkeys(m for scores in methods.values() for m in scores))
            rows = [
                MethodRow(name, name == report.get("default"), [_metric(scores.get(m)) for m in metrics])
                for name, scores in methods.items()
            ]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # missing, not JSON, not a report
            return cls(path, [], [], {}, f"cannot read it ({type(exc).__name__}: {exc})")
        notes = {
            k: str(round(v, 4) if isinstance(v, float) else v)
            for k, v in report.items()
            if k != "default" and isinstance(v, str | int | float | bool)
        }
        return cls(path, metrics, rows, notes)


def _metric(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


router = APIRouter(include_in_schema=False)


def _session_of(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(12)


def _page(
    state: ServeState, request: Request, template: str, session_id: str, status_code: int = 200, **context: object
) -> Response:
    """A storefront page with the 'for you' panel: recommendations from the items this session viewed."""
    served, viewed = state.runtime.served, state.runtime.sessions.items(session_id)
    recommended = served.recommend_session(viewed, 6) if viewed else served.recommend_user(f"anonymous:{session_id}", 6)
    context = {"viewed": viewed, "for_you": recommended, **context}
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="lax")
    return response


@router.get("/", response_class=HTMLResponse)
def shop(
    state: State, request: Request, q: str = "", filters: Annotated[list[str] | None, Query(alias="filter")] = None
) -> Response:
    """Popular items, or one page of search results with facets to filter by, personalised by the items
    this session looked at."""
    query = q.strip()[:200]
    session_id = _session_of(request)
    served = state.runtime.served
    if not query:
        return _page(state, request, "shop.html", session_id, q="", results=served.recommend_user("", PAGE_RESULTS))
    applied = list(dict.fromkeys(filters or []))[:MAX_FILTERS]
    chips = applied_filters(query, applied)
    try:
        response = served.search(
            query,
            PAGE_RESULTS,
            filters=parse_filters(applied),
            facets=state.settings.storefront_facets,
            session=state.runtime.sessions.items(session_id),
        )
    except SearchError as exc:
        return _page(state, request, "shop.html", session_id, 422, q=query, results=[], applied=chips, error=str(exc))
    return _page(
        state,
        request,
        "shop.html",
        session_id,
        q=query,
        results=response,
        total=response.total,
        applied=chips,
        clear=_shop_href(query, []) if len(applied) > 1 else None,
        facets=facet_links(query, applied, response.facets, response.total),
        understood=response.understood,
    )


@router.get("/product/{item_id}", response_class=HTMLResponse)
def product(state: State, request: Request, item_id: str) -> Response:
    served = state.runtime.served
    position = served.position(item_id)
    if position is None:
        return HTMLResponse("<h1>Not found</h1>", status_code=404)
    session_id = _session_of(request)
    view = Event(type=EventType.VIEW, timestamp=datetime.now(UTC), session_id=session_id, item_id=item_id)
    state.runtime.post_events([view])
    item = served.catalog.result(position, 0.0, "")
    return _page(state, request, "product.html", session_id, item=item, similar=served.similar_items(item_id, 8))


@router.get("/admin", response_class=HTMLResponse)
def admin(state: State, request: Request) -> Response:
    key = state.keys.verify(request.cookies.get(ADMIN_COOKIE, ""))
    if key is None or not key.allows(Scope.ADMIN):
        return TEMPLATES.TemplateResponse(request, "login.html", {"error": None})
    ws = state.ws
    current = ws.current_version
    versions = [ModelVersion(v, v == current, read_manifest(ws.models_dir / v)) for v in ws.model_versions()]
    context = {
        "counts": state.runtime.store.counts(),
        "manifest": state.runtime.engine.manifest,
        "versions": versions[::-1],  # newest first
        "reports": [
            EvaluationReport.load(ws.root, path) for path in ws.settings.serve.evaluation_reports
        ],  # read afresh: config edits show at once
        "config": ws.config_path.name,
        "live": state.telemetry.summary(),
        "keys": state.keys.list(),
    }
    return TEMPLATES.TemplateResponse(request, "admin.html", context)


@router.post("/admin/login")
async def login(state: State, request: Request) -> Response:
    form = parse_qs((await request.body()).decode())
    plaintext = form.get("key", [""])[0]
    key = state.keys.verify(plaintext)
    if key is None or not key.allows(Scope.ADMIN):
        error = {"error": "That is not an admin key."}
        return TEMPLATES.TemplateResponse(request, "login.html", error, status_code=401)
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(ADMIN_COOKIE, plaintext, httponly=True, samesite="strict")
    return response
