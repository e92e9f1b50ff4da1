"""Search: keyword + meaning, filters, facets, sorting, pages, personalised by a user's and a session's items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shopfusion.search.service import DEFAULT_FACETS, Sort
from shopfusion.serve.deps import READ, State
from shopfusion.serve.schemas import SESSION_NOTE, USER_NOTE, SearchIn, SearchOut, parse_filters
from shopfusion.serve.served import Served

router = APIRouter(dependencies=[READ])


async def _search(
    state: State,
    q: str,
    k: int,
    page: int,
    sort: str,
    filters: Mapping[str, str | Sequence[str]],
    facets: Sequence[str],
    user_id: str | None,
    session_id: str | None,
) -> Response:
    owner = state.user_key(user_id) if user_id else None
    session = tuple(state.runtime.sessions.items(session_id)) if session_id else ()
    frozen_filters = tuple(sorted((f, v if isinstance(v, str) else tuple(v)) for f, v in filters.items()))

    def answer(served: Served) -> SearchOut:
        response = served.search(
            q, k, filters=filters, sort=sort, page=page, facets=facets, user_id=owner, session=session
        )
        return SearchOut(**response.as_dict())

    request = ("search", q, k, page, sort, frozen_filters, tuple(facets), session)
    return await state.answers.respond(owner, request, answer)


@router.get("/search", response_model=SearchOut)
async def search_get(
    state: State,
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
    return await _search(state, q, k, page, sort, parse_filters(filters or []), facet_names, user_id, session_id)


@router.post("/search", response_model=SearchOut)
async def search_post(state: State, body: SearchIn) -> Response:
    """As GET /search, with filters as a JSON object."""
    return await _search(
        state, body.q, body.k, body.page, body.sort, body.filters, body.facets, body.user_id, body.session_id
    )
