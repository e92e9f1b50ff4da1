"""Items and users through the API: writes are searchable and recommendable at once, without a rebuild,
deletions vanish from every surface, and the next build includes both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shopfusion.catalog.store import open_store
from shopfusion.engine import Engine
from shopfusion.serve.app import create_app
from shopfusion.serve.auth import KEYS_FILE, KeyStore, Scope
from shopfusion.serve.runtime import Runtime
from shopfusion.workspace import Workspace

BASKET = {
    "item_id": "N1",
    "title": "Bamboo picnic basket",
    "description": "Wicker basket with plates and cups for a picnic",
    "category": "Outdoor > Picnic",
    "brand": "Woody",
    "price": 30.0,
}


@pytest.fixture
def workspace(built_workspace: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ws"
    shutil.copytree(built_workspace, copy)
    return copy


@pytest.fixture
def keys(workspace: Path) -> dict[str, str]:
    store = KeyStore(workspace / KEYS_FILE)
    return {"read": store.create("shop", [Scope.READ]), "write": store.create("feed", [Scope.WRITE])}


@pytest.fixture
def client(workspace: Path, keys: dict[str, str]) -> TestClient:
    return TestClient(create_app(workspace))


def ids(response: object) -> list[str]:
    return [r["item_id"] for r in response.json()["results"]]  # type: ignore[attr-defined]


def test_new_item_is_searchable_filterable_and_similar_at_once(client: TestClient, keys: dict[str, str]) -> None:
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
    assert client.get("/items/N1", headers=read).status_code == 404
    created = client.put("/items/N1", json=BASKET, headers=write)
    assert created.status_code == 201 and created.json() == {"item_id": "N1", "created": True}
    assert client.get("/items/N1", headers=read).json()["title"] == "Bamboo picnic basket"
    # words no built document has are searchable at once
    found = client.get("/search", params={"q": "bamboo picnic", "k": 3}, headers=read).json()
    assert found["results"][0]["item_id"] == "N1" and "keywords" in found["results"][0]["reason"]
    filtered = client.get("/search", params={"q": "basket", "filter": "brand:woody"}, headers=read).json()
    assert [r["item_id"] for r in filtered["results"]] == ["N1"] and filtered["facets"]["brand"] == {"Woody": 1}
    # reachable by text similarity: its own neighbours, never itself
    similar = client.get("/recommendations/item/N1", params={"k": 3}, headers=read).json()["results"]
    assert len(similar) == 3 and "N1" not in {r["item_id"] for r in similar}
    assert similar[0]["reason"] == "similar to “Bamboo picnic basket”"
    assert client.get("/recommendations/item/N1", params={"kind": "complements"}, headers=read).json() == {
        "results": []
    }
    assert client.get("/health").json()["items"] == 11
    # a second PUT replaces it
    again = client.put("/items/N1", json={**BASKET, "price": 25.0}, headers=write)
    assert again.status_code == 200 and again.json()["created"] is False
    assert (
        client.get("/search", params={"q": "bamboo picnic", "k": 1}, headers=read).json()["results"][0]["price"] == 25
    )


def test_changed_item_is_served_as_it_is_now(client: TestClient, keys: dict[str, str]) -> None:
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
    teapot = client.get("/items/A9", headers=read).json()
    assert (
        client.put(
            "/items/A9", json={**teapot, "title": "Porcelain teapot with infuser", "price": 31.0}, headers=write
        ).status_code
        == 200
    )
    hit = client.get("/search", params={"q": "infuser", "k": 1}, headers=read).json()["results"][0]
    assert hit["item_id"] == "A9" and hit["price"] == 31.0
    assert client.get("/search", params={"q": "teapot", "filter": "price:30..40"}, headers=read).json()["total"] == 1
    session = client.post("/recommendations/session", json={"item_ids": ["A8"], "k": 10}, headers=read)
    cards = {r["item_id"]: r for r in session.json()["results"]}
    assert cards["A9"]["title"] == "Porcelain teapot with infuser" and cards["A9"]["price"] == 31.0


def test_deleted_item_is_gone_from_every_surface(client: TestClient, keys: dict[str, str]) -> None:
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
    before = ids(client.post("/recommendations/session", json={"item_ids": ["A8"], "k": 10}, headers=read))
    assert "A9" in before
    assert client.delete("/items/A9", headers=write).status_code == 204
    assert client.get("/items/A9", headers=read).status_code == 404
    assert client.delete("/items/A9", headers=write).status_code == 404
    assert "A9" not in ids(client.get("/search", params={"q": "porcelain teapot", "k": 10}, headers=read))
    assert client.get("/recommendations/item/A9", headers=read).status_code == 404
    session = ids(client.post("/recommendations/session", json={"item_ids": ["A8"], "k": 10}, headers=read))
    assert "A9" not in session and len(session) == len(before) - 1  # the rest still fill the list
    for user in ("1", "2", "new-visitor"):
        assert "A9" not in ids(client.get(f"/recommendations/user/{user}", params={"k": 10}, headers=read))
    assert "A9" not in ids(client.get("/recommendations/item/A8", params={"k": 9}, headers=read))
    assert client.get("/health").json()["items"] == 9
    # deleting a new item too
    client.put("/items/N1", json=BASKET, headers=write)
    assert client.delete("/items/N1", headers=write).status_code == 204
    assert "N1" not in ids(client.get("/search", params={"q": "bamboo picnic basket"}, headers=read))


def test_item_writes_need_the_write_scope_and_valid_bodies(client: TestClient, keys: dict[str, str]) -> None:
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
    assert client.put("/items/N1", json=BASKET).status_code == 401
    assert client.put("/items/N1", json=BASKET, headers=read).status_code == 403
    assert client.delete("/items/A1", headers=read).status_code == 403
    negative = client.put("/items/N1", json={**BASKET, "price": -1}, headers=write)
    assert negative.status_code == 422 and negative.json()["detail"][0]["loc"] == ["body", "price"]
    unknown = client.put("/items/N1", json={**BASKET, "colour": "red"}, headers=write)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "colour"]
    mismatch = client.put("/items/N2", json=BASKET, headers=write)
    assert mismatch.status_code == 422 and "differs from the path" in mismatch.text
    assert client.put("/items/N1", json={**BASKET, "title": ""}, headers=write).status_code == 422


def test_the_next_build_includes_item_writes(workspace: Path) -> None:
    from shopfusion.build.builder import build
    from shopfusion.catalog.schema import Item

    runtime = Runtime(Workspace.open(workspace))
    assert runtime.put_item(Item(**BASKET)) is True
    assert runtime.delete_item("A3") is True
    runtime.reload()  # an engine loaded again (e.g. a rollback) still serves the writes
    assert runtime.served.position("N1") is not None and runtime.served.position("A3") is None
    restarted = Runtime(Workspace.open(workspace))  # and so does a server started again before the next build
    assert restarted.served.position("N1") is not None and restarted.served.position("A3") is None
    build(Workspace.open(workspace))
    rebuilt = Engine.open(workspace)
    assert rebuilt.catalog.position("N1") is not None and rebuilt.catalog.position("A3") is None
    assert rebuilt.search("bamboo picnic basket", 1)[0].item_id == "N1"


def test_users_profiles(client: TestClient, keys: dict[str, str], workspace: Path) -> None:
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}
    assert client.get("/users/newcomer", headers=write).status_code == 404
    known = client.get("/users/1", headers=write).json()
    assert known["attributes"] == {} and known["events"] > 0  # events, no profile yet
    profile = {"attributes": {"segment": "outdoor", "newsletter": True, "sizes": ["M", "L"]}}
    put = client.put("/users/1", json=profile, headers=write)
    assert put.status_code == 200 and put.json()["attributes"] == profile["attributes"]
    assert client.get("/users/1", headers=write).json()["attributes"] == profile["attributes"]
    store = open_store(Workspace.open(workspace).store_url())
    assert store.get_user("1") is not None
    assert client.get("/users/1", headers=read).status_code == 403  # personal data
    nested = client.put("/users/1", json={"attributes": {"address": {"city": "x"}}}, headers=write)
    assert nested.status_code == 422 and "attributes" in nested.text
    assert client.put("/users/1", json={"attrs": {}}, headers=write).status_code == 422


def test_new_item_joins_the_similar_items_of_built_ones(client: TestClient, keys: dict[str, str]) -> None:
    read, write = {"X-API-Key": keys["read"]}, {"X-API-Key": keys["write"]}

    def similar(item_id: str) -> list[dict[str, object]]:
        response = client.get(f"/recommendations/item/{item_id}", params={"k": 3}, headers=read)
        return response.json()["results"]  # type: ignore[no-any-return]

    before = similar("A1")
    shoe = {"item_id": "N2", "title": "Red running shoes", "category": "Shoes > Running", "brand": "Swift"}
    assert client.put("/items/N2", json=shoe, headers=write).status_code == 201
    after = similar("A1")
    assert after[0]["item_id"] == "N2" and after[0]["signals"]["added_since_build"]  # type: ignore[index]
    assert after[0]["reason"] == "new, similar to “Red running shoes”"
    assert [r["item_id"] for r in after[1:]] == [r["item_id"] for r in before[:2]]  # the rest move down
    assert "N2" not in {r["item_id"] for r in similar("A9")}  # not near a teapot
