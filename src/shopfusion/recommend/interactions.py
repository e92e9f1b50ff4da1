"""User×item interaction matrix built once from events and shared by every candidate source."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

# How much each kind of event says about a user's interest in an item.
EVENT_WEIGHTS = {"purchase": 1.0, "add_to_cart": 0.6, "rating": 0.8, "click": 0.3, "view": 0.2}


@dataclass
class Interactions:
    user_ids: np.ndarray
    item_ids: np.ndarray
    matrix: sp.csr_matrix  # users × items, weighted event counts
    recency: sp.csr_matrix  # users × items, 1 / (1 + days since the latest interaction)
    end: pd.Timestamp
    baskets: sp.csr_matrix  # orders × items, 1 where the item was in the order (0 rows without order ids)
    sequences: list[np.ndarray] = field(default_factory=list)  # per user: item positions in time order

    @classmethod
    def from_events(cls, events: pd.DataFrame, item_ids: np.ndarray | None = None) -> Interactions:
        """`events` needs user_id, item_id, type, timestamp (order_id optional); unknown types and anonymous rows
        are skipped."""
        frame = events[events["type"].isin(list(EVENT_WEIGHTS)) & events["user_id"].notna()]
        frame = frame[frame["item_id"].notna()]
        if item_ids is None:
            item_ids = np.array(sorted(frame["item_id"].unique()), dtype=object)
        else:
            frame = frame[frame["item_id"].isin(set(item_ids))]
        user_ids = np.array(sorted(frame["user_id"].unique()), dtype=object)
        u = pd.Index(user_ids).get_indexer(frame["user_id"])
        i = pd.Index(item_ids).get_indexer(frame["item_id"])
        w = frame["type"].map(EVENT_WEIGHTS).to_numpy(dtype=np.float32)
        shape = (len(user_ids), len(item_ids))
        matrix = sp.csr_matrix((w, (u, i)), shape=shape, dtype=np.float32)
        end = frame["timestamp"].max() if len(frame) else pd.Timestamp.now(tz="UTC")
        age_days = ((end - frame["timestamp"]).dt.total_seconds() / 86400.0).to_numpy(dtype=np.float32)
        # recency of the latest interaction per cell, as 1 / (1 + age in days)
        recency = _max_duplicates(u, i, 1.0 / (1.0 + age_days), shape)
        order = np.argsort(frame["timestamp"].to_numpy(), kind="stable")
        by_user = pd.Series(i[order]).groupby(u[order], sort=True)
        sequences = [np.asarray(s, dtype=np.int64) for _, s in by_user]
        return cls(user_ids, item_ids, matrix, recency, end, _baskets(frame, i, len(item_ids)), sequences)

    def user_index(self, user_id: str) -> int | None:
        return self._user_rows.get(user_id)

    @cached_property
    def _user_rows(self) -> dict[str, int]:
        return {str(u): row for row, u in enumerate(self.user_ids.tolist())}

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def _baskets(frame: pd.DataFrame, item_positions: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Orders × items from the purchase rows that carry an order id: the input of 'bought together'."""
    if "order_id" not in frame.columns:
        return sp.csr_matrix((0, n_items), dtype=np.float32)
    keep = (frame["order_id"].notna() & (frame["type"] == "purchase")).to_numpy()
    if not keep.any():
        return sp.csr_matrix((0, n_items), dtype=np.float32)
    orders, order_rows = np.unique(frame["order_id"].to_numpy()[keep].astype(str), return_inverse=True)
    cells = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (order_rows, item_positions[keep])),
        shape=(len(orders), n_items),
    )
    cells.data[:] = 1.0  # duplicates summed: an order counts an item once
    return cells


def _max_duplicates(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    frame = pd.DataFrame({"r": rows, "c": cols, "v": values}).groupby(["r", "c"], sort=False)["v"].max()
    r = frame.index.get_level_values(0).to_numpy()
    c = frame.index.get_level_values(1).to_numpy()
    return sp.csr_matrix((frame.to_numpy(dtype=np.float32), (r, c)), shape=shape)
