"""HTTP load benchmark: throughput and p50/p99 of search and recommend at fixed concurrency over loopback,
printed beside the same calls made in-process in the same run.

    .venv/bin/python bench/http_load.py [--workspace workspace] [--concurrency 50] [--seconds 30]

Builds the demo workspace first if it is missing. Also measures how long an event posted over HTTP takes
to show in the next recommendation, and prints the machine's load average (the client shares its cores).
Traffic goes only to 127.0.0.1; the run is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from shopfusion.engine import Engine
from shopfusion.serve.auth import KEYS_FILE, KeyStore, Scope
from shopfusion.workspace import Workspace

QUERIES = [
    "tea cup",
    "christmas decorations",
    "lunch bag",
    "heart candle holder",
    "red retrospot",
    "vintage sign",
    "cake stand",
    "paper napkins",
    "garden",
    "jumbo bag pink",
    "wooden frame",
    "alarm clock",
]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def in_process(call: Callable[[], object], n: int = 300) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


async def load(
    url: str, key: str, make_path: Callable[[], str], concurrency: int, seconds: float
) -> tuple[list[float], Counter[str]]:
    """Latencies of every request, and failures by kind (HTTP status or exception name)."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0, headers=headers) as client:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.get(make_path())
                    if response.status_code != 200:
                        errors[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def event_to_recommendation(url: str, read: str, write: str, item_id: str) -> float:
    """Seconds from posting a purchase for a new user to a recommendation response that reflects it."""
    user = f"bench-{random.randrange(10**9)}"
    with httpx.Client(base_url=url, timeout=10.0) as client:
        cold = client.get(f"/recommendations/user/{user}", headers={"X-API-Key": read}).json()["results"]
        event = {"type": "purchase", "timestamp": time.time(), "user_id": user, "item_id": item_id}
        started = time.perf_counter()
        client.post("/events", json=event, headers={"X-API-Key": write}).raise_for_status()
        while time.perf_counter() - started < 10:
            warm = client.get(f"/recommendations/user/{user}", headers={"X-API-Key": read}).json()["results"]
            if warm != cold:
                return time.perf_counter() - started
    return float("inf")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("workspace"))
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    shopfusion = [sys.executable, "-m", "shopfusion"]
    if Workspace(args.workspace.resolve()).current_version is None:
        subprocess.run([*shopfusion, "demo", "-w", str(args.workspace)], check=True, capture_output=True)
    engine = Engine.open(args.workspace)
    users = [str(u) for u in engine.recommend_service.interactions.user_ids[:500]]
    rng = random.Random(0)
    engine.search("warm up", 10)
    base = {
        "search": in_process(lambda: engine.search(rng.choice(QUERIES), 10)),
        "recommend": in_process(lambda: engine.recommend_user(rng.choice(users), 10)),
    }
    keys = KeyStore(args.workspace / KEYS_FILE)
    key = keys.create("http-load-bench", [Scope.READ], rate_per_minute=10**9)  # measure serving, not the limiter
    writer = keys.create("http-load-bench-events", [Scope.WRITE])
    port = free_port()
    server = subprocess.Popen(
        [*shopfusion, "serve", "-w", str(args.workspace), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        load_before = os.getloadavg()
        reflected = event_to_recommendation(url, key, writer, engine.search(QUERIES[0], 1)[0].item_id)
        paths = {
            "search": lambda: f"/search?q={rng.choice(QUERIES)}&k=10",
            "recommend": lambda: f"/recommendations/user/{rng.choice(users)}?k=10",
        }
        print(
            f"{'endpoint':10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} | in-process p50 / p99 ms | p99 ratio"
        )
        for name, make_path in paths.items():
            asyncio.run(load(url, key, make_path, args.concurrency, 2.0))  # warm up
            latencies, errors = asyncio.run(load(url, key, make_path, args.concurrency, args.seconds))
            rps = len(latencies) / args.seconds
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            b50, b99 = percentile(base[name], 0.5), percentile(base[name], 0.99)
            failed = sum(errors.values())
            print(
                f"{name:10} {rps:8.0f} {p50:8.1f} {p99:8.1f} {failed:7d} | {b50:8.2f} / {b99:6.2f}        | {p99 / b99:6.1f}x"
                + (f"  failures: {dict(errors)}" if failed else "")
            )
        print(
            f"concurrency {args.concurrency}, {args.seconds:.0f}s per endpoint, mean in-process search "
            f"{statistics.mean(base['search']) * 1000:.2f} ms; event reflected in the next recommendation after "
            f"{reflected * 1000:.0f} ms"
        )
        load_after = os.getloadavg()
        print(
            f"load average (1 min) before / after the load: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} cores"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        for plaintext in (key, writer):
            keys.revoke(plaintext.split("_")[1])


if __name__ == "__main__":
    main()
