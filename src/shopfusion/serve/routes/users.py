"""User profiles (personal data: the write scope) and erasure (the admin scope)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from shopfusion.catalog.schema import User
from shopfusion.serve.deps import ADMIN, WRITE, State
from shopfusion.serve.schemas import ErasureOut, UserIn, UserOut

router = APIRouter(prefix="/users")


@router.get("/{user_id}", dependencies=[WRITE])
def get_user(state: State, user_id: str) -> UserOut:
    """A user's profile and stored event count (personal data: needs the write scope)."""
    key, store = state.user_key(user_id), state.runtime.store
    profile, events = store.get_user(key), store.count_user_events(key)
    if profile is None and not events:
        raise HTTPException(404, f"unknown user {user_id!r}")
    return UserOut(user_id=user_id, attributes=profile.attributes if profile else {}, events=events)


@router.put("/{user_id}", dependencies=[WRITE])
def put_user(state: State, user_id: str, body: UserIn) -> UserOut:
    """Create or replace a user's profile attributes (stored under the pseudonym when that is on)."""
    key, store = state.user_key(user_id), state.runtime.store
    with store.transaction() as tx:
        tx.upsert("users", [(key, User(user_id=key, attributes=body.attributes))])
    return UserOut(user_id=user_id, attributes=body.attributes, events=store.count_user_events(key))


@router.delete("/{user_id}", dependencies=[ADMIN])
def erase_user(state: State, user_id: str) -> ErasureOut:
    """Remove the user's events and profile from the store, stop serving from their history at once (in
    every model version served from now on), and rebuild the models in the background so that nothing
    learned from them remains."""
    key, runtime = state.user_key(user_id), state.runtime
    removed = runtime.erase_user(key)
    state.answers.touch(key)
    retraining = runtime.retrain() if removed else False
    return ErasureOut(events_removed=removed, retraining=retraining or runtime.status.running)
