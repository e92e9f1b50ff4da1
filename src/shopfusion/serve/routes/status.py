"""Health and Prometheus metrics: open to monitoring, no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from shopfusion.serve.deps import State
from shopfusion.serve.schemas import Health

router = APIRouter()


@router.get("/health")
async def health(state: State) -> Health:
    served = state.runtime.served
    return Health(status="ok", items=served.item_count, built_at=str(served.engine.manifest.get("built_at")))


@router.get("/metrics", include_in_schema=False)
def metrics(state: State) -> Response:
    return Response(state.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
