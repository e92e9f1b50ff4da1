"""Per-feature contributions of a LightGBM model read from the leaves a row lands in (path attribution, as
in Saabas' treeinterpreter): every split on the way from a tree's root to a leaf credits its feature with
the change of the expected score it makes, so each leaf's credits are fixed once the model is trained, and a
row's contributions are one leaf lookup per tree. They add up to the raw score like TreeSHAP's do, at a
fraction of the cost: per-row TreeSHAP was about half of a served recommendation's time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np


@dataclass(frozen=True)
class LeafContributions:
    """Every tree's leaves' credits stacked: row `offsets[t] + leaf` holds tree t's leaf's credit per feature
    and, in the last column, the tree root's expected score."""

    credits: np.ndarray  # leaves of all trees × (features + 1)
    offsets: np.ndarray  # first row of each tree

    @classmethod
    def of(cls, booster: Any) -> Self:
        """From a trained booster, for the trees its predictions use (the best iteration when it stopped early)."""
        model = booster.dump_model()
        width = len(model["feature_names"]) + 1
        tables = []
        for tree in model["tree_info"]:
            table = np.zeros((tree["num_leaves"], width))
            root = tree["tree_structure"]
            start = np.zeros(width)
            start[-1] = _expected(root)
            _credit_leaves(root, start, table)
            tables.append(table)
        sizes = np.array([len(t) for t in tables], dtype=np.int64)
        credits = np.vstack(tables) if tables else np.zeros((0, width))
        return cls(credits, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64))

    def __call__(self, booster: Any, features: np.ndarray) -> np.ndarray:
        """rows × (features + 1): each row sums to the booster's raw score of that row."""
        leaves = np.asarray(booster.predict(features, pred_leaf=True, num_threads=1), dtype=np.int64)
        return self.credits[leaves.reshape(len(features), -1) + self.offsets].sum(axis=1)


def _expected(node: dict[str, Any]) -> float:
    return float(node["leaf_value"] if "leaf_value" in node else node["internal_value"])


def _credit_leaves(node: dict[str, Any], credit: np.ndarray, table: np.ndarray) -> None:
    if "split_feature" not in node:
        table[node.get("leaf_index", 0)] = credit
        return
    for child in (node["left_child"], node["right_child"]):
        step = credit.copy()
        step[node["split_feature"]] += _expected(child) - _expected(node)
        _credit_leaves(child, step, table)
