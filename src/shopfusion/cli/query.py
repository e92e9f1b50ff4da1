"""Commands that ask a built workspace: `search` and `recommend`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shopfusion.catalog.privacy import user_key_function
from shopfusion.cli.common import JsonOpt, WorkspaceOpt, console, fail, open_engine, pairs, print_results
from shopfusion.workspace import WorkspaceError


def search(
    query: Annotated[str, typer.Argument(help="What the shopper typed.")],
    workspace: WorkspaceOpt = Path("workspace"),
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Results per page.")] = 10,
    filter_: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            help="FIELD=VALUE, repeatable: category=Shoes>Running (path prefix), brand=a,b, price=10..50, "
            "in_stock=true, or any attribute.",
        ),
    ] = None,
    sort: Annotated[
        str, typer.Option("--sort", help="relevance | price_asc | price_desc | newest | popularity.")
    ] = "relevance",
    page: Annotated[int, typer.Option("--page", min=1, help="Page number (k results per page).")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid (BM25 + semantic) product search with filters, facets, sorting and pagination."""
    from shopfusion.search.service import SearchError

    filters = pairs(filter_ or [], "--filter")
    try:
        response = open_engine(workspace).search(query, k, filters=filters, sort=sort, page=page)
    except SearchError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        console.print_json(json.dumps(response.as_dict(), default=str))
        return
    print_results(f"search: {query} (page {page}, {response.total} matches)", response, as_json)
    for name, counts in response.facets.items():
        if not counts:
            continue
        top = ", ".join(f"{value} ({count})" for value, count in list(counts.items())[:8])
        console.print(f"  {name}: {top}")


def recommend(
    workspace: WorkspaceOpt = Path("workspace"),
    user: Annotated[str | None, typer.Option("--user", help="Recommendations for this user.")] = None,
    item: Annotated[str | None, typer.Option("--item", help="Items similar to this item.")] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Comma-separated item ids of an anonymous session.")
    ] = None,
    complements: Annotated[
        bool, typer.Option("--complements", help="With --item: frequently bought together instead of similar.")
    ] = False,
    category: Annotated[
        str | None, typer.Option("--category", help="With --user/--session: only items in this category path.")
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Number of results.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Recommendations for a user, a session, or similar items / complements for an item, each with its reason.

    An unknown user or an empty session gets trending/popular items; an unknown --item is an error."""
    if sum(x is not None for x in (user, item, session)) != 1:
        raise fail("give exactly one of --user, --item, --session")
    if complements and item is None:
        raise fail("--complements goes with --item")
    engine = open_engine(workspace)
    try:
        if user is not None:
            key = user_key_function(engine.ws)(user)
            results, title = engine.recommend_user(key, k, category=category), f"for user {user}"
        elif item is not None and complements:
            results, title = engine.complements(item, k), f"bought together with item {item}"
        elif item is not None:
            results, title = engine.similar_items(item, k), f"similar to item {item}"
        else:
            ids = [s.strip() for s in (session or "").split(",") if s.strip()]
            results, title = engine.recommend_session(ids, k, category=category), f"for session {','.join(ids)}"
    except (KeyError, WorkspaceError) as exc:
        raise fail(str(exc)) from exc
    print_results(title, results, as_json)
