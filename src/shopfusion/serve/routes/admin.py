"""Model versions: list them, retrain in the background, roll back or forward, reload what CURRENT names."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from shopfusion.serve.deps import ADMIN, State
from shopfusion.serve.schemas import ModelsOut
from shopfusion.workspace import WorkspaceError

router = APIRouter(prefix="/admin", dependencies=[ADMIN])


@router.get("/models")
def list_models(state: State) -> ModelsOut:
    ws = state.ws
    return ModelsOut(versions=ws.model_versions(), current=ws.current_version, retrain=state.runtime.status)


@router.post("/retrain", status_code=202)
def retrain(state: State) -> ModelsOut:
    """Rebuild from the store in the background; the new version is served once it is fully loaded."""
    if not state.runtime.retrain():
        raise HTTPException(409, "a retrain is already running")
    return list_models(state)


@router.post("/models/{version}/activate")
def activate(state: State, version: str) -> ModelsOut:
    """Roll back (or forward) to a kept version."""
    try:
        state.runtime.activate(version)
    except WorkspaceError as exc:
        raise HTTPException(404, str(exc)) from exc
    return list_models(state)


@router.post("/reload")
def reload(state: State) -> ModelsOut:
    state.runtime.reload()
    return list_models(state)
