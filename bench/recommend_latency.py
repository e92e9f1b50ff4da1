"""In-process recommendation latency of a built workspace: p50/p99 per surface over random known users,
unknown users, sessions and items.

    .venv/bin/python bench/recommend_latency.py --workspace /tmp/ws [--requests 2000] [--k 10] [--ranker]

The target in issue #4 is p99 ≤ 10 ms for one user. Single-threaded BLAS, as a serving worker would run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from threadpoolctl import threadpool_limits

from shopfusion.engine import Engine


def _percentiles(call: Callable[[int], object], n: int) -> tuple[float, float]:
    timings = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        timings.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("workspace"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--ranker", action="store_true", help="serve through the learned ranker even where the fusion won at build"
    )
    args = parser.parse_args()
    engine = Engine.open(args.workspace)
    service = engine.recommend_service
    if args.ranker:
        if service.ranker is None:
            parser.error("this workspace has no learned ranker")
        service.method = "learned"
    print(f"method: {service.method}")
    rng = random.Random(0)
    users = [str(u) for u in service.interactions.user_ids]
    items = [str(i) for i in service.catalog.frame["item_id"]]
    k = args.k
    surfaces: dict[str, Callable[[int], object]] = {
        "user (known)": lambda i: engine.recommend_user(rng.choice(users), k),
        "user (unknown)": lambda i: engine.recommend_user(f"new-{i}", k),
        "session (3 items)": lambda i: engine.recommend_session(rng.sample(items, 3), k),
        "similar items": lambda i: engine.similar_items(rng.choice(items), k),
        "complements": lambda i: engine.complements(rng.choice(items), k),
    }
    print(f"{len(items)} items, {len(users)} users, k={k}, {args.requests} requests per surface")
    with threadpool_limits(1):
        for name, call in surfaces.items():
            _percentiles(call, 20)  # warm-up
            p50, p99 = _percentiles(call, args.requests)
            print(f"{name:<20} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")


if __name__ == "__main__":
    main()
