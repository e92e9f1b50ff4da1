"""The HTTP API through FastAPI's TestClient: endpoints, auth, limits and validation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shopfusion.serve.app import create_app
from shopfusion.serve.auth import KEYS_FILE, KeyStore, Scope
from shopfusion.workspace import Workspace


@pytest.fixture
def workspace(built_workspace: Path, tmp_path: Path) -> Path:
    """A private copy: API tests write events and keys."""
    copy = tmp_path / "ws"
    shutil.copytree(built_workspace, copy)
    return copy


@pytest.fixture
def keys(workspace: Path) -> dict[str, str]:
    store = KeyStore(workspace / KEYS_FILE)
    return {
        "read": store.create("storefront", [Scope.READ]),
        "write": store.create("tracker", [Scope.WRITE]),
        "admin": store.create("ops", [Scope.ADMIN]),
        "slow": store.create("tiny", [Scope.READ], rate_per_minute=3),
    }


@pytest.fixture
def client(workspace: Path, keys: dict[str, str]) -> TestClient:
    return TestClient(create_app(workspace))


def test_keys_are_stored_hashed(workspace: Path, keys: dict[str, str]) -> None:
    stored = (workspace / KEYS_FILE).read_text()
    assert all(secret not in stored for secret in keys.values())
    assert KeyStore(workspace / KEYS_FILE).verify(keys["read"]) is not None


def test_search_and_recommendations(client: TestClient, keys: dict[str, str]) -> None:
    headers = {"X-API-Key": keys["read"]}
    hits = client.get("/search", params={"q": "porcelain teapot", "k": 3}, headers=headers).json()["results"]
    assert hits[0]["item_id"] == "A9" and hits[0]["reason"]
    assert client.post("/search", json={"q": "teapot", "k": 2}, headers=headers).json()["results"]
    user = client.get("/recommendations/user/1", headers=headers).json()["results"]
    assert user and all(r["reason"] for r in user)
    similar = client.get("/recommendations/item/A1", params={"k": 3}, headers=headers).json()["results"]
    assert len(similar) == 3 and "A1" not in {r["item_id"] for r in similar}
    session = client.post("/recommendations/session", json={"item_ids": ["A8"], "k": 3}, headers=headers)
    assert session.status_code == 200 and session.json()["results"]
    assert client.get("/recommendations/item/NOPE", headers=headers).status_code == 404


def test_auth_failures(client: TestClient, keys: dict[str, str]) -> None:
    assert client.get("/search", params={"q": "x"}).status_code == 401
    assert client.get("/search", params={"q": "x"}, headers={"X-API-Key": "sf_dead_beef"}).status_code == 401
    event = {"type": "view", "timestamp": "2024-04-01T10:00:00", "user_id": "1", "item_id": "A1"}
    assert client.post("/events", json=event, headers={"X-API-Key": keys["read"]}).status_code == 403
    assert client.delete("/users/1", headers={"X-API-Key": keys["write"]}).status_code == 403
    # admin may do everything
    assert client.get("/search", params={"q": "x"}, headers={"X-API-Key": keys["admin"]}).status_code == 200


def test_a_key_revoked_elsewhere_is_refused_once_the_file_is_looked_at_again(
    client: TestClient, keys: dict[str, str], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"X-API-Key": keys["read"]}
    assert client.get("/search", params={"q": "x"}, headers=headers).status_code == 200  # verified, remembered
    assert KeyStore(workspace / KEYS_FILE).revoke(keys["read"].split("_")[1])  # e.g. `shopfusion keys revoke`
    monkeypatch.setattr("shopfusion.serve.auth.RECHECK_SECONDS", 0.0)
    assert client.get("/search", params={"q": "y"}, headers=headers).status_code == 401
    same_process = KeyStore(workspace / KEYS_FILE)
    admin = same_process.create("ops2", [Scope.ADMIN])
    assert same_process.verify(admin) is not None
    assert same_process.revoke(admin.split("_")[1]) and same_process.verify(admin) is None


def test_rate_limit(client: TestClient, keys: dict[str, str]) -> None:
    codes = [
        client.get("/search", params={"q": "x"}, headers={"X-API-Key": keys["slow"]}).status_code for _ in range(5)
    ]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_validation_and_size_limits(client: TestClient, keys: dict[str, str]) -> None:
    headers = {"X-API-Key": keys["write"]}
    bad = client.post("/events", json={"type": "purchase", "timestamp": "2024-01-01", "item_id": "A1"}, headers=headers)
    assert bad.status_code == 422 and "user_id or session_id" in bad.text
    bad_type = client.post("/events", json={"type": "teleport", "timestamp": "1", "user_id": "u"}, headers=headers)
    assert bad_type.status_code == 422 and "type" in bad_type.text
    huge = client.post(
        "/events", content=b"{" + b" " * 2_000_000 + b"}", headers={**headers, "content-type": "application/json"}
    )
    assert huge.status_code == 413

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 50_000

    streamed = client.post("/events", content=chunks(), headers={**headers, "content-type": "application/json"})
    assert streamed.status_code == 413  # no Content-Length: the bytes are counted as they arrive
    read = {"X-API-Key": keys["read"]}
    assert client.get("/search", params={"q": ""}, headers=read).status_code == 422
    assert client.get("/search", params={"q": "x", "k": 100000}, headers=read).status_code == 422


def _wait_for_retrain(client: TestClient, admin: dict[str, str]) -> dict:  # type: ignore[type-arg]
    import time

    for _ in range(600):
        state = client.get("/admin/models", headers=admin).json()
        if not state["retrain"]["running"]:
            return state  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("retrain did not finish")


def test_events_change_the_next_recommendation(client: TestClient, keys: dict[str, str]) -> None:
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}

    def top(user: str) -> list[str]:
        return [r["item_id"] for r in client.get(f"/recommendations/user/{user}", headers=read).json()["results"]]

    cold = top("shopper-42")
    assert cold == top("someone-else")  # unknown users share the cold-start list
    events = [
        {"type": "purchase", "timestamp": "2024-04-01T10:00:00", "user_id": "shopper-42", "item_id": item}
        for item in ("A8", "A9")
    ]
    assert client.post("/events", json={"events": events}, headers=write).status_code == 200
    warm = top("shopper-42")  # no retrain in between
    assert warm != cold
    assert set(warm[:2]) & {"A7", "A10"}, warm  # the tea-and-home cluster, learned from other shoppers
    reasons = client.get("/recommendations/user/shopper-42", headers=read).json()["results"][0]["reason"]
    assert reasons != "popular right now"


def test_events_are_stored_and_user_erased(client: TestClient, keys: dict[str, str], workspace: Path) -> None:
    from shopfusion.catalog.store import open_store

    headers, admin = {"X-API-Key": keys["write"]}, {"X-API-Key": keys["admin"]}
    one = {"type": "view", "timestamp": "2024-04-01T10:00:00", "user_id": "1", "item_id": "A1"}
    batch = {"events": [one, {**one, "type": "click"}]}
    assert client.post("/events", json=one, headers=headers).json() == {"accepted": 1}
    assert client.post("/events", json=batch, headers=headers).json() == {"accepted": 2}
    store = open_store(Workspace.open(workspace).store_url())
    stored = int((store.events_frame()["user_id"] == "1").sum())
    assert stored > 3  # their purchases from the build plus the three new events
    cold = client.get("/recommendations/user/never-seen", headers={"X-API-Key": keys["read"]}).json()["results"]
    erased = client.delete("/users/1", headers=admin).json()
    assert erased == {"events_removed": stored, "retraining": True}
    assert (store.events_frame()["user_id"] == "1").sum() == 0
    after = client.get("/recommendations/user/1", headers={"X-API-Key": keys["read"]}).json()["results"]
    assert [r["item_id"] for r in after] == [r["item_id"] for r in cold]  # served as a stranger at once
    state = _wait_for_retrain(client, admin)
    assert state["retrain"]["last_error"] is None and len(state["versions"]) == 2
    rebuilt = Workspace.open(workspace)
    from shopfusion.engine import Engine

    assert Engine(rebuilt).recommend_service.interactions.user_index("1") is None  # gone from the models too


def test_anonymous_read_for_the_storefront(workspace: Path, keys: dict[str, str]) -> None:
    client = TestClient(create_app(workspace, anonymous_read=True))
    assert client.get("/search", params={"q": "teapot"}).status_code == 200
    event = {"type": "view", "timestamp": "1", "user_id": "u", "item_id": "A1"}
    assert client.post("/events", json=event).status_code == 401  # writing still needs a key


def test_health_metrics_and_openapi(client: TestClient, keys: dict[str, str]) -> None:
    assert client.get("/health").json()["items"] == 10
    client.get("/search", params={"q": "tea"}, headers={"X-API-Key": keys["read"]})
    metrics = client.get("/metrics").text
    assert 'shopfusion_requests_total{method="GET",route="/search",status="200"}' in metrics
    assert "shopfusion_request_seconds_bucket" in metrics
    assert "/recommendations/session" in client.get("/openapi.json").json()["paths"]


def test_retrain_swaps_versions_and_rollback(client: TestClient, keys: dict[str, str], workspace: Path) -> None:

    admin = {"X-API-Key": keys["admin"]}
    first = client.get("/admin/models", headers=admin).json()
    assert len(first["versions"]) == 1 and first["current"] == first["versions"][0]
    assert client.post("/admin/retrain", headers={"X-API-Key": keys["read"]}).status_code == 403
    assert client.post("/admin/retrain", headers=admin).status_code == 202
    # the old version keeps answering while the new one builds: no downtime
    assert client.get("/search", params={"q": "tea"}, headers=admin).status_code == 200
    state = _wait_for_retrain(client, admin)
    assert state["retrain"]["last_error"] is None
    assert len(state["versions"]) == 2 and state["current"] == state["versions"][1]
    assert client.get("/health").json()["built_at"] != first["current"]
    rolled = client.post(f"/admin/models/{first['current']}/activate", headers=admin).json()
    assert rolled["current"] == first["current"] and Workspace.open(workspace).current_version == first["current"]
    assert client.post("/admin/models/v0/activate", headers=admin).status_code == 404


def test_search_filters_facets_sort_and_pages(client: TestClient, keys: dict[str, str]) -> None:
    read = {"X-API-Key": keys["read"]}
    socks = client.get(
        "/search", params={"q": "socks", "filter": "category:Clothing", "sort": "price_asc"}, headers=read
    )
    body = socks.json()
    assert [r["item_id"] for r in body["results"]] == ["A5", "A4"] and body["total"] == 2
    assert body["facets"]["brand"] == {"Trail": 1, "Swift": 1} and body["sort"] == "price_asc"
    both = client.get(
        "/search", params=[("q", "shoes"), ("filter", "brand:swift"), ("filter", "brand:trail")], headers=read
    )
    assert {r["item_id"] for r in both.json()["results"]} >= {"A1", "A2", "A3"}
    second = client.get("/search", params={"q": "shoes", "k": 1, "page": 2, "facets": ""}, headers=read).json()
    assert second["page"] == 2 and len(second["results"]) == 1 and second["facets"] == {}
    posted = client.post(
        "/search",
        json={"q": "shoes", "filters": {"price": "60..", "brand": ["swift"]}, "user_id": "1", "session_id": "s"},
        headers=read,
    )
    assert [r["item_id"] for r in posted.json()["results"]] == ["A2"]
    unknown = client.get("/search", params={"q": "shoes", "filter": "colour:red"}, headers=read)
    assert unknown.status_code == 422 and "unknown filter field 'colour'" in unknown.text
    malformed = client.get("/search", params={"q": "shoes", "filter": "brand"}, headers=read)
    assert malformed.status_code == 422 and "FIELD:VALUE" in malformed.text
    assert client.get("/search", params={"q": "shoes", "filter": "price:9..1"}, headers=read).status_code == 422
    assert client.get("/search", params={"q": "shoes", "sort": "cheapest"}, headers=read).status_code == 422
    extra = client.post("/search", json={"q": "shoes", "limit": 3}, headers=read)
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "limit"]


def test_search_reads_the_query_and_personalises(workspace: Path, keys: dict[str, str]) -> None:
    config = Workspace.open(workspace).config_path
    config.write_text("pseudonymise_users = true\n" + config.read_text())
    client = TestClient(create_app(workspace))
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}

    def scores(**params: str) -> list[float]:
        response = client.get("/search", params={"q": "hiking", **params}, headers=read)
        assert response.status_code == 200
        return [r["score"] for r in response.json()["results"]]

    understood = client.get("/search", params={"q": "xyz under 5"}, headers=read).json()["understood"]
    assert understood == {"text": "xyz", "filters": {"price": "..5"}, "category": None}
    posted = client.post("/search", json={"q": "xyz under 5", "user_id": "1"}, headers=read).json()
    assert posted["understood"]["filters"] == {"price": "..5"} and posted["results"]
    anonymous = scores()
    assert scores(user_id="shopper", session_id="unseen") == anonymous  # no history yet: nothing to go on
    events = [
        {"type": "purchase", "timestamp": "2024-04-01T10:00:00", "user_id": "shopper", "item_id": "A8"},
        {"type": "view", "timestamp": "2024-04-01T10:01:00", "session_id": "visit-1", "item_id": "A7"},
    ]
    assert client.post("/events", json={"events": events}, headers=write).status_code == 200
    by_user, by_session = scores(user_id="shopper"), scores(session_id="visit-1")
    assert by_user != anonymous and by_session != anonymous and by_user != by_session  # each history counts
