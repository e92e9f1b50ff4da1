"""What the routes share, handed to each through FastAPI's `Depends`: the serving state, and the API-key check
with its rate limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from shopfusion.serve.answers import Answers
from shopfusion.serve.auth import KeyStore, RateLimiter, Scope
from shopfusion.serve.runtime import Runtime
from shopfusion.serve.telemetry import Telemetry
from shopfusion.settings import ServeSettings
from shopfusion.workspace import Workspace

KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key from `shopfusion keys create`")


@dataclass(frozen=True)
class ServeState:
    """One server's shared state, made by `create_app` and kept on the application."""

    ws: Workspace
    settings: ServeSettings
    runtime: Runtime
    answers: Answers
    keys: KeyStore
    user_key: Callable[[str], str]  # the key a user id is stored and looked up under (pseudonymised or not)
    limiter: RateLimiter
    telemetry: Telemetry
    anonymous_read: bool  # callers without a key may search and read recommendations (the storefront demo)


async def serve_state(request: Request) -> ServeState:
    state: ServeState = request.app.state.serve
    return state


State = Annotated[ServeState, Depends(serve_state)]


def _require(scope: Scope) -> Callable[..., Awaitable[None]]:
    async def check(request: Request, state: State, api_key: Annotated[str | None, Depends(KEY_HEADER)]) -> None:
        if api_key is None and state.anonymous_read and scope is Scope.READ:
            caller = f"anon:{request.client.host if request.client else '?'}"
            rate = state.settings.rate_per_minute
        else:
            if api_key is None:
                raise HTTPException(401, "missing API key (send it in the X-API-Key header)")
            key = state.keys.verify(api_key)
            if key is None:
                raise HTTPException(401, "invalid API key")
            if not key.allows(scope):
                raise HTTPException(403, f"this key lacks the '{scope.value}' scope")
            caller, rate = key.key_id, key.rate_per_minute or state.settings.rate_per_minute
        if not state.limiter.allow(caller, rate):
            raise HTTPException(429, "rate limit exceeded", headers={"Retry-After": "1"})

    return check


# route dependencies: the caller's key has this scope (or reads anonymously where allowed) and is within its rate
READ = Depends(_require(Scope.READ))
WRITE = Depends(_require(Scope.WRITE))
ADMIN = Depends(_require(Scope.ADMIN))
