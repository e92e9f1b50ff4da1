"""HTTP load benchmark: throughput and p50/p99 of search and recommend at fixed concurrency over loopback,
printed beside the same calls made in-process in the same run.

    .venv/bin/python bench/http_load.py [--workspace workspace] [--concurrency 50] [--seconds 30]

Builds the demo workspace first if it is missing. Traffic goes only to 127.0.0.1; the run is bounded
in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import subprocess
import sys
import time
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
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0, headers=headers) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.get(make_path())
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += 0 if ok else 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


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
    port = free_port()
    server = subprocess.Popen(
        [*shopfusion, "serve", "--demo", "-w", str(args.workspace), "--port", str(port)],
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
            print(
                f"{name:10} {rps:8.0f} {p50:8.1f} {p99:8.1f} {errors:7d} | {b50:8.2f} / {b99:6.2f}        | {p99 / b99:6.1f}x"
            )
        print(
            f"concurrency {args.concurrency}, {args.seconds:.0f}s per endpoint, mean in-process search "
            f"{statistics.mean(base['search']) * 1000:.2f} ms"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        keys.revoke(key.split("_")[1])


if __name__ == "__main__":
    main()
