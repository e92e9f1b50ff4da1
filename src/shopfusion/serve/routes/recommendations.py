"""Recommendations for a user, for an anonymous session, and around an item (similar, bought together)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from shopfusion.serve.deps import READ, State
from shopfusion.serve.schemas import ResultsOut, SessionIn
from shopfusion.serve.served import Served

router = APIRouter(prefix="/recommendations", dependencies=[READ])


@router.get("/user/{user_id}", response_model=ResultsOut)
async def for_user(state: State, user_id: str, k: Annotated[int, Query(ge=1, le=200)] = 10) -> Response:
    owner = state.user_key(user_id)
    return await state.answers.respond(
        owner, ("user", k), lambda served: ResultsOut.of(served.recommend_user(owner, k))
    )


@router.get("/item/{item_id}", response_model=ResultsOut)
async def for_item(
    state: State,
    item_id: str,
    k: Annotated[int, Query(ge=1, le=200)] = 10,
    kind: Annotated[
        Literal["similar", "complements"], Query(description="similar items, or frequently bought together")
    ] = "similar",
) -> Response:
    def answer(served: Served) -> ResultsOut:
        try:
            found = served.similar_items(item_id, k) if kind == "similar" else served.complements(item_id, k)
        except KeyError as exc:
            raise HTTPException(404, f"unknown item {item_id!r}") from exc
        return ResultsOut.of(found)

    return await state.answers.respond(None, ("item", item_id, k, kind), answer)


@router.post("/session", response_model=ResultsOut)
async def for_session(state: State, body: SessionIn) -> Response:
    items = tuple(body.item_ids)
    return await state.answers.respond(
        None, ("session", items, body.k), lambda served: ResultsOut.of(served.recommend_session(list(items), body.k))
    )
