"""The response cache answers repeats from memory but never an answer the engine would no longer give: item
writes, a shopper's own events and new model versions show at once; popularity drift within its freshness."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shopfusion.serve import cache as cache_module
from shopfusion.serve.app import create_app
from shopfusion.serve.auth import KEYS_FILE, KeyStore, Scope
from shopfusion.serve.cache import STALE_FACTOR, ResponseCache


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cache_module.time, "monotonic_ns", fake)
    return fake


def test_fresh_stale_and_expired(clock: Clock) -> None:
    cache, view = ResponseCache(max_entries=10, fresh_seconds=10), object()
    key = cache.key(view, None, "search", "tea")
    assert cache.get(key) is None
    cache.put(view, key, b"answer")
    hit = cache.get(key)
    assert hit is not None and hit.body == b"answer" and not hit.stale
    clock.advance(13)  # past the freshness of every entry (10 s ± 20 %)
    first, second = cache.get(key), cache.get(key)
    assert first is not None and first.stale  # this lookup starts the one refresh
    assert second is not None and not second.stale and second.body == b"answer"  # served while it runs
    cache.put(view, key, b"refreshed")
    again = cache.get(key)
    assert again is not None and again.body == b"refreshed" and not again.stale
    clock.advance(STALE_FACTOR * 13)
    assert cache.get(key) is None  # too old to serve even while refreshing


def test_failed_refresh_can_be_retried(clock: Clock) -> None:
    cache, view = ResponseCache(max_entries=10, fresh_seconds=1), object()
    key = cache.key(view, None, "x")
    cache.put(view, key, b"a")
    clock.advance(1.5)
    assert cache.get(key).stale  # type: ignore[union-attr]
    cache.release(key)
    assert cache.get(key).stale  # type: ignore[union-attr]


def test_owner_events_and_new_views_invalidate(clock: Clock) -> None:
    cache, view = ResponseCache(max_entries=10, fresh_seconds=10), object()
    mine, theirs = cache.key(view, "u1", "user", 10), cache.key(view, "u2", "user", 10)
    cache.put(view, mine, b"mine")
    cache.put(view, theirs, b"theirs")
    clock.advance(0.001)
    cache.touch("u1")  # u1 posted an event
    assert cache.get(cache.key(view, "u1", "user", 10)) is None
    assert cache.get(cache.key(view, "u2", "user", 10)) is not None
    newer = object()  # an item write or a retrain serves a new view
    assert cache.get(cache.key(newer, "u2", "user", 10)) is None
    cache.put(view, theirs, b"computed from the old view")  # a late answer from before the swap
    assert cache.get(cache.key(newer, "u2", "user", 10)) is None


def test_disabled_cache_keeps_nothing() -> None:
    for cache in (ResponseCache(max_entries=0, fresh_seconds=10), ResponseCache(max_entries=10, fresh_seconds=0)):
        view = object()
        key = cache.key(view, None, "q")
        cache.put(view, key, b"x")
        assert cache.get(key) is None


@pytest.fixture
def client_and_keys(built_workspace: Path, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    workspace = tmp_path / "ws"
    shutil.copytree(built_workspace, workspace)
    store = KeyStore(workspace / KEYS_FILE)
    keys = {"X-API-Key": store.create("shop", [Scope.READ])}, {"X-API-Key": store.create("feed", [Scope.WRITE])}
    return TestClient(create_app(workspace)), {"read": keys[0]["X-API-Key"], "write": keys[1]["X-API-Key"]}


def cache_hits(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('shopfusion_response_cache_lookups_total{result="hit"}'):
            return float(line.split()[-1])
    return 0.0


def test_repeats_come_from_the_cache_and_writes_show_at_once(
    client_and_keys: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = client_and_keys
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
    params: dict[str, str | int] = {"q": "teapot", "k": 3}
    first = client.get("/search", params=params, headers=read).json()
    hits = cache_hits(client)
    assert client.get("/search", params=params, headers=read).json() == first
    assert cache_hits(client) == hits + 1
    teapot = {"item_id": "N7", "title": "Teapot teapot teapot", "category": "Home > Tea", "price": 9.0}
    assert client.put("/items/N7", json=teapot, headers=write).status_code == 201
    after_put = client.get("/search", params=params, headers=read).json()["results"]
    assert after_put[0]["item_id"] == "N7"
    assert client.delete("/items/N7", headers=write).status_code == 204
    after_delete = client.get("/search", params=params, headers=read).json()["results"]
    assert "N7" not in {r["item_id"] for r in after_delete}


def test_session_search_follows_the_session(client_and_keys: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = client_and_keys
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
    params: dict[str, str | int] = {"q": "cup", "k": 5, "session_id": "s-1"}
    before = client.get("/search", params=params, headers=read).json()["results"]
    event = {"type": "view", "timestamp": "2024-04-01T10:00:00", "session_id": "s-1", "item_id": "A8"}
    assert client.post("/events", json=event, headers=write).status_code == 200
    hits = cache_hits(client)
    after = client.get("/search", params=params, headers=read).json()["results"]
    assert cache_hits(client) == hits  # computed again: the session's items are part of the key
    assert [r["score"] for r in after] != [r["score"] for r in before]
