"""HTTP load benchmark: throughput and p50/p99 of search and recommend at fixed concurrency over loopback,
printed beside the same calls made in-process in the same run, with the response cache on (the default) and
off (every request computed).

    .venv/bin/python bench/http_load.py [--workspace workspace] [--concurrency 50] [--seconds 30] [--cache both|on|off]

The load comes from wrk (C, one thread: `apt-get install wrk`) when it is installed, else from an httpx
async client, which needs a core of its own and so understates what the server does. Builds the demo
workspace first if it is missing. Also measures how long an event posted over HTTP takes to show in the next
recommendation, and prints the machine's load average (the client shares its cores). Traffic goes only to
127.0.0.1; every run is bounded in time and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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


WARM_UP_SECONDS = 5.0  # after every path was asked once: the state of a server that has been up a while
COMPUTE_EVERY_TIME = {"SHOPFUSION_SERVE__CACHE_ENTRIES": "0"}

WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("SF_PATHS")) do paths[#paths + 1] = line end
wrk.headers["X-API-Key"] = os.getenv("SF_KEY")
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SF_RESULT {"requests": %d, "seconds": %f, "p50_us": %f, "p99_us": %f, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]  # by kind: HTTP status class, timeout, connection failure...


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


def wrk_load(wrk: str, url: str, key: str, paths: list[str], concurrency: int, seconds: float) -> LoadResult:
    with tempfile.TemporaryDirectory() as tmp:
        script, path_file = Path(tmp) / "load.lua", Path(tmp) / "paths.txt"
        script.write_text(WRK_SCRIPT)
        path_file.write_text("\n".join(paths) + "\n")
        run = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "SF_PATHS": str(path_file), "SF_KEY": key},
            check=True,
        )
    line = next(row for row in run.stdout.splitlines() if row.startswith("SF_RESULT "))
    got = json.loads(line.removeprefix("SF_RESULT "))
    errors = {kind: got[kind] for kind in ("connect", "read", "write", "status", "timeout") if got[kind]}
    return LoadResult(got["requests"] / got["seconds"], got["p50_us"] / 1000, got["p99_us"] / 1000, errors)


def httpx_load(url: str, key: str, paths: list[str], concurrency: int, seconds: float) -> LoadResult:
    """Latencies of every request, and failures by kind (HTTP status or exception name)."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def run() -> None:
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"X-API-Key": key}
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10.0, headers=headers) as client:

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    try:
                        response = await client.get(random.choice(paths))
                        if response.status_code != 200:
                            errors[str(response.status_code)] += 1
                    except httpx.HTTPError as exc:
                        errors[type(exc).__name__] += 1
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(run())
    return LoadResult(len(latencies) / seconds, percentile(latencies, 0.5), percentile(latencies, 0.99), dict(errors))


def load(url: str, key: str, paths: list[str], concurrency: int, seconds: float) -> LoadResult:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk_load(wrk, url, key, paths, concurrency, seconds)
    return httpx_load(url, key, paths, concurrency, seconds)


def cache_lookups(url: str) -> Counter[str]:
    """The server's response-cache lookups so far by result (hit, stale = served while refreshed, miss)."""
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    found: Counter[str] = Counter()
    for line in metrics.splitlines():
        if line.startswith("shopfusion_response_cache_lookups_total{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split('result="')[1].split('"')[0]] = round(float(value))
    return found


def prime(url: str, key: str, paths: list[str]) -> None:
    """Asks every path once, as a server that has been up a while has been asked: with the response cache on,
    the measured run then sees the steady state of hits and background refreshes, not the first misses."""
    with httpx.Client(base_url=url, timeout=30.0, headers={"X-API-Key": key}) as client:
        for path in paths:
            client.get(path).raise_for_status()


def event_to_recommendation(url: str, read: str, write: str, admin: str, item_id: str) -> float:
    """Seconds from posting a purchase for a new user to a recommendation response that reflects it. The
    user is erased afterwards: the benchmark leaves the workspace's events as it found them."""
    user = f"bench-{random.randrange(10**9)}"
    with httpx.Client(base_url=url, timeout=10.0) as client:
        cold = client.get(f"/recommendations/user/{user}", headers={"X-API-Key": read}).json()["results"]
        event = {"type": "purchase", "timestamp": time.time(), "user_id": user, "item_id": item_id}
        started = time.perf_counter()
        client.post("/events", json=event, headers={"X-API-Key": write}).raise_for_status()
        try:
            while time.perf_counter() - started < 10:
                warm = client.get(f"/recommendations/user/{user}", headers={"X-API-Key": read}).json()["results"]
                if warm != cold:
                    return time.perf_counter() - started
            return float("inf")
        finally:
            client.delete(f"/users/{quote(user, safe='')}", headers={"X-API-Key": admin}).raise_for_status()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(workspace: Path, env: dict[str, str]) -> Iterator[str]:
    """`shopfusion serve` on a free loopback port, stopped on exit; yields its URL once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "shopfusion", "serve", "-w", str(workspace), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=Path("workspace"))
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured load per endpoint and cache mode")
    parser.add_argument("--cache", choices=["both", "on", "off"], default="both", help="which cache rows to run")
    args = parser.parse_args()
    if Workspace(args.workspace.resolve()).current_version is None:
        demo = [sys.executable, "-m", "shopfusion", "demo", "-w", str(args.workspace)]
        subprocess.run(demo, check=True, capture_output=True)
    engine = Engine.open(args.workspace)
    users = [str(u) for u in engine.recommend_service.interactions.user_ids[:500]]
    rng = random.Random(0)
    engine.search("warm up", 10)
    base = {
        "search": in_process(lambda: engine.search(rng.choice(QUERIES), 10)),
        "recommend": in_process(lambda: engine.recommend_user(rng.choice(users), 10)),
    }
    paths = {
        "search": [f"/search?{httpx.QueryParams(q=q, k=10)}" for q in QUERIES],
        "recommend": [f"/recommendations/user/{quote(u, safe='')}?k=10" for u in users],
    }
    keys = KeyStore(args.workspace / KEYS_FILE)
    key = keys.create("http-load-bench", [Scope.READ], rate_per_minute=10**9)  # measure serving, not the limiter
    writer = keys.create("http-load-bench-events", [Scope.WRITE])
    admin = keys.create("http-load-bench-erase", [Scope.ADMIN])
    client = "wrk" if shutil.which("wrk") else "httpx (install wrk for a client that leaves the server its cores)"
    print(f"load client: {client}; concurrency {args.concurrency}; {args.seconds:.0f} s per row after a warm-up")
    print(
        f"{'endpoint':10} {'cache':9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | in-process p50 / p99 ms"
    )
    load_before = os.getloadavg()
    reflected = float("nan")
    try:
        for mode, env in (("on", {}), ("off", COMPUTE_EVERY_TIME)):
            if args.cache not in ("both", mode):
                continue
            with serving(args.workspace, env) as url:
                for name, endpoint_paths in paths.items():
                    prime(url, key, endpoint_paths)
                    load(url, key, endpoint_paths, args.concurrency, WARM_UP_SECONDS)
                    before = cache_lookups(url)
                    got = load(url, key, endpoint_paths, args.concurrency, args.seconds)
                    lookups = cache_lookups(url) - before
                    b50, b99 = percentile(base[name], 0.5), percentile(base[name], 0.99)
                    failed = sum(got.errors.values())
                    print(
                        f"{name:10} {mode:9} {got.requests_per_second:7.0f} {got.p50_ms:7.1f} {got.p99_ms:7.1f} "
                        f"{failed:6d} | {b50:8.2f} / {b99:6.2f}"
                        + (f"  | refreshed {lookups['stale']}, computed {lookups['miss']}" if mode == "on" else "")
                        + (f"  failures: {got.errors}" if failed else "")
                    )
                if mode == "on":  # last: erasing the bench user afterwards serves a new view of the engine
                    item = engine.search(QUERIES[0], 1)[0].item_id
                    reflected = event_to_recommendation(url, key, writer, admin, item)
    finally:
        for plaintext in (key, writer, admin):
            keys.revoke(plaintext.split("_")[1])
    load_after = os.getloadavg()
    print(f"an event posted over HTTP showed in the next recommendation after {reflected * 1000:.0f} ms")
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
