"""Prometheus metrics of one app instance, and a readable summary for the admin dashboard."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


@dataclass(frozen=True)
class RouteStats:
    route: str
    count: int
    errors: int
    mean_ms: float


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shopfusion_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "shopfusion_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0),
        )

        self.cache_lookups = Counter(
            "shopfusion_response_cache_lookups",
            "Reads answered from the response cache",
            ["result"],
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.latency.labels(route).observe(seconds)
        self.requests.labels(route, method, str(status)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def summary(self) -> list[RouteStats]:
        counts: dict[str, int] = defaultdict(int)
        errors: dict[str, int] = defaultdict(int)
        seconds: dict[str, float] = defaultdict(float)
        for metric in self.registry.collect():
            for sample in metric.samples:
                route = sample.labels.get("route", "")
                if sample.name == "shopfusion_requests_total":
                    counts[route] += int(sample.value)
                    if sample.labels["status"].startswith("5"):
                        errors[route] += int(sample.value)
                elif sample.name == "shopfusion_request_seconds_sum":
                    seconds[route] += sample.value
        return [
            RouteStats(route, n, errors[route], 1000 * seconds[route] / n if n else 0.0)
            for route, n in sorted(counts.items(), key=lambda kv: -kv[1])
        ]


class ObserveRequests:
    """ASGI middleware timing every request by its route template (plain ASGI: Starlette's BaseHTTPMiddleware
    costs a task and a stream per request)."""

    def __init__(self, app: Any, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.telemetry.observe(route, scope["method"], status, time.perf_counter() - started)
