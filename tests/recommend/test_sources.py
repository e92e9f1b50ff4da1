"""Each candidate source on hand-made interactions whose answers can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.sources import (
    EASE,
    Complements,
    ContentSimilarity,
    History,
    ItemKNN,
    MatrixFactorization,
    Popularity,
    RepeatPurchase,
    candidates,
    top_positions,
)
from tests.recommend import synthetic

ITEMS = np.array(["i0", "i1", "i2", "i3"], dtype=object)
DAY = pd.Timestamp("2024-05-01", tz="UTC")


def _events(rows: list[tuple[str, str, int, str]]) -> pd.DataFrame:
    """(user, item, days before the end, order id) → an events frame of purchases."""
    return pd.DataFrame(
        [(u, i, "purchase", DAY - pd.Timedelta(days=d), o) for u, i, d, o in rows],
        columns=["user_id", "item_id", "type", "timestamp", "order_id"],
    )


@pytest.fixture
def hand() -> Interactions:
    # u1: i0 i1 (one order) | u2: i0 i1 (one order) | u3: i0 i2 (separate orders) | u4: i3 long ago
    return Interactions.from_events(
        _events(
            [
                ("u1", "i0", 0, "a"),
                ("u1", "i1", 0, "a"),
                ("u2", "i0", 1, "b"),
                ("u2", "i1", 1, "b"),
                ("u3", "i0", 2, "c"),
                ("u3", "i2", 3, "d"),
                ("u4", "i3", 300, "e"),
            ]
        ),
        ITEMS,
    )


def test_top_positions_drops_non_positive_and_keeps_order() -> None:
    assert top_positions(np.array([0.0, 3.0, -1.0, 3.0, 1.0]), 3).tolist() == [1, 3, 4]


def test_popularity_counts_and_decay(hand: Interactions) -> None:
    flat = Popularity(half_life_days=1e9).fit(hand)
    assert flat.scores_[:4] == pytest.approx([3, 2, 1, 1], rel=1e-4)
    trending = Popularity(half_life_days=1.0).fit(hand)
    # i3 (bought 300 days ago) decays below i2 (3 days ago) but stays rankable
    assert 0 < trending.scores_[3] < trending.scores_[2]
    assert candidates(trending, History.empty(), 2).positions.tolist() == [0, 1]


def test_repeat_purchase_prefers_frequent_and_recent() -> None:
    data = Interactions.from_events(
        _events([("u", "i0", 1, "a"), ("u", "i0", 1, "b"), ("u", "i1", 1, "c"), ("u", "i2", 30, "d")]), ITEMS
    )
    source = RepeatPurchase().fit(data)
    got = candidates(source, History.of_user(data, 0), 10)
    assert got.positions.tolist() == [0, 1, 2]  # twice > once at the same time > once a month earlier
    assert got.because.tolist() == got.positions.tolist()


def test_item_knn_cosine_values(hand: Interactions) -> None:
    knn = ItemKNN().fit(hand)
    # users of i0: {u1,u2,u3}; i1: {u1,u2}; i2: {u3} → cos(i0,i1)=2/√6, cos(i0,i2)=1/√3
    assert knn.similarity_[0, 1] == pytest.approx(2 / np.sqrt(6), rel=1e-5)
    assert knn.similarity_[0, 2] == pytest.approx(1 / np.sqrt(3), rel=1e-5)
    got = knn.similar(0, 5)
    assert got.positions.tolist() == [1, 2] and got.because.tolist() == [0, 0]


def test_complements_come_from_the_same_order(hand: Interactions) -> None:
    source = Complements().fit(hand)
    assert source.similar(0, 5).positions.tolist() == [1]  # i2 was bought by u3 but in another order
    assert source.similarity_[0, 1] == pytest.approx(2 / np.sqrt(2 * 3), rel=1e-5)


def test_ease_closed_form_and_size_limit(hand: Interactions) -> None:
    ease = EASE(l2=1.0).fit(hand)
    x = (hand.matrix > 0).toarray().astype(float)
    p = np.linalg.inv(x.T @ x + np.eye(4))
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0)
    assert ease.weights_ == pytest.approx(expected.astype(np.float32), abs=1e-5)
    assert candidates(ease, History.of_items([1]), 1).positions.tolist() == [0]
    assert not EASE(max_items=3).fit(hand).fitted


def test_content_similarity_reaches_items_without_events(hashing_encoder: object) -> None:
    snapshot = synthetic.catalog()
    source = ContentSimilarity(neighbours=5, threads=1).from_vectors(synthetic.vectors(snapshot))
    red_shoes = snapshot.position("A1")
    assert red_shoes is not None
    top = [snapshot.frame.at[p, "item_id"] for p in source.similar(red_shoes, 2).positions]
    assert set(top) == {"A2", "A11"}  # the other running shoes, one of them never bought


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_matrix_factorisation_separates_clusters(kind: str) -> None:
    snapshot = synthetic.catalog()
    data = Interactions.from_events(synthetic.events(60), snapshot.frame["item_id"].to_numpy(dtype=object))
    model = MatrixFactorization(kind, factors=8, iterations=20, threads=1).fit(data)  # type: ignore[arg-type]
    sport = {snapshot.position(i) for i in synthetic.SPORT}
    user = data.user_index("u0")
    assert user is not None
    history = History.of_user(data, user)
    top = candidates(model, history, 3).positions
    assert len(top) == 3
    assert sum(int(p) in sport for p in top) >= 2
    session = candidates(model, History.of_items([snapshot.position("A8")]), 3).positions  # type: ignore[list-item]
    assert sum(int(p) in sport for p in session) <= 1  # folded-in session of a home item: home items


def test_candidates_respect_exclusion(hand: Interactions) -> None:
    pop = Popularity().fit(hand)
    assert 0 not in candidates(pop, History.empty(), 4, np.array([0])).positions


def test_als_session_fold_in_matches_implicit() -> None:
    snapshot = synthetic.catalog()
    data = Interactions.from_events(synthetic.events(40), snapshot.frame["item_id"].to_numpy(dtype=object))
    model = MatrixFactorization("als", factors=8, iterations=5, threads=1).fit(data)
    history = History.of_items([0, 3, 5])
    row = sp.csr_matrix((history.weights, (np.zeros(3, dtype=np.int64), history.items)), shape=(1, data.n_items))
    expected = np.asarray(model.model_.recalculate_user(0, row)).ravel()
    assert model._fold_in(row) == pytest.approx(expected, rel=1e-3, abs=1e-4)
