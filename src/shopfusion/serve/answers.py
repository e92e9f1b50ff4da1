"""Search and recommendation responses answered through the response cache: each from one consistent view of
the served models, computed off the event loop, kept, and refreshed in the background once stale."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable

import anyio
import anyio.to_thread
from fastapi import Response
from pydantic import BaseModel

from shopfusion.serve.cache import ResponseCache
from shopfusion.serve.runtime import Runtime
from shopfusion.serve.served import Served
from shopfusion.serve.telemetry import Telemetry

Answer = Callable[[Served], BaseModel]


class Answers:
    def __init__(self, runtime: Runtime, cache: ResponseCache, telemetry: Telemetry) -> None:
        self._runtime = runtime
        self._cache = cache
        self._telemetry = telemetry
        self._refreshes: set[asyncio.Task[None]] = set()  # background refreshes of stale responses, kept referenced
        # one refresh at a time: they queue behind each other instead of taking every thread from the requests
        # that must wait for an answer
        self._refresh_limiter = anyio.CapacityLimiter(1)

    async def respond(self, owner: str | None, request: tuple[Hashable, ...], answer: Answer) -> Response:
        """The response from the cache, or answered from one consistent view off the event loop and kept.
        `owner`: the user key the answer depends on (None: nobody's in particular)."""
        served = self._runtime.served
        key = self._cache.key(served, owner, *request)
        found = self._cache.get(key)
        self._telemetry.cache_lookups.labels("miss" if found is None else "stale" if found.stale else "hit").inc()
        if found is None:
            return Response(await self._compute(served, key, answer), media_type="application/json")
        if found.stale:
            task = asyncio.create_task(self._refresh(served, key, answer))
            self._refreshes.add(task)
            task.add_done_callback(self._refreshes.discard)
        return Response(found.body, media_type="application/json")

    def touch(self, owner: str) -> None:
        """The owner's events or erasure change their answers: none cached before is served again."""
        self._cache.touch(owner)

    async def _compute(
        self, served: Served, key: Hashable, answer: Answer, limiter: anyio.CapacityLimiter | None = None
    ) -> bytes:
        try:
            model = await anyio.to_thread.run_sync(answer, served, limiter=limiter)
            body = model.model_dump_json().encode()
        except BaseException:
            self._cache.release(key)
            raise
        self._cache.put(served, key, body)
        return body

    async def _refresh(self, served: Served, key: Hashable, answer: Answer) -> None:
        with contextlib.suppress(Exception):  # the stale answer was served; a later request retries
            await self._compute(served, key, answer, self._refresh_limiter)
