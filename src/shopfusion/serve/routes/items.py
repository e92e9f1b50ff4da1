"""Catalogue items: read, created or replaced, deleted — served from the next request, without a rebuild."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from shopfusion.catalog.schema import Item
from shopfusion.serve.deps import READ, WRITE, State
from shopfusion.serve.schemas import ItemWritten

router = APIRouter(prefix="/items")


@router.get("/{item_id}", dependencies=[READ])
def get_item(state: State, item_id: str) -> Item:
    found = state.runtime.store.get_items([item_id]).get(item_id)
    if found is None:
        raise HTTPException(404, f"unknown item {item_id!r}")
    return found


@router.put("/{item_id}", dependencies=[WRITE])
def put_item(state: State, item_id: str, item: Item, response: Response) -> ItemWritten:
    """Create or replace an item. It is stored, searchable and recommendable (by text similarity) from the
    next request, without a rebuild; the next build merges it into the models."""
    if item.item_id != item_id:
        raise HTTPException(422, f"item_id in the body ({item.item_id!r}) differs from the path ({item_id!r})")
    created = state.runtime.put_item(item)
    response.status_code = 201 if created else 200
    return ItemWritten(item_id=item_id, created=created)


@router.delete("/{item_id}", dependencies=[WRITE], status_code=204)
def delete_item(state: State, item_id: str) -> None:
    """Remove an item from the store and from every search and recommendation from the next request."""
    if not state.runtime.delete_item(item_id):
        raise HTTPException(404, f"unknown item {item_id!r}")
