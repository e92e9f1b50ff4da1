"""Behaviour events: stored, and counted by the next recommendation and search without a retrain."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from shopfusion.catalog.schema import Event
from shopfusion.serve.deps import WRITE, State
from shopfusion.serve.schemas import Accepted, EventsIn

router = APIRouter(dependencies=[WRITE])


@router.post("/events")
def post_events(state: State, body: Event | EventsIn) -> Accepted:
    events = [
        e.model_copy(update={"user_id": state.user_key(e.user_id)}) if e.user_id else e
        for e in (body.events if isinstance(body, EventsIn) else [body])
    ]
    if len(events) > state.settings.max_batch_events:
        raise HTTPException(413, f"at most {state.settings.max_batch_events} events per request")
    state.runtime.post_events(events)
    for user in {e.user_id for e in events if e.user_id}:
        state.answers.touch(user)
    return Accepted(accepted=len(events))
