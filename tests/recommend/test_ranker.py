"""The learned ranker: beats its best single input feature, its contributions add up to its score, and the
service uses it (and explains with it) when there is enough to learn from."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfusion.catalog.schema import Item
from shopfusion.catalog.snapshot import CatalogSnapshot
from shopfusion.index.terms import term_vectors
from shopfusion.recommend.interactions import Interactions
from shopfusion.recommend.ranker_features import CandidateRows, FeatureBuilder, transitions
from shopfusion.recommend.ranker_training import fit_ranker, train_ranker
from shopfusion.recommend.sequential import SequentialSource
from shopfusion.recommend.service import RecommendService
from shopfusion.recommend.sources import History
from shopfusion.recommend.tuning import validation_sets, validation_split
from shopfusion.settings import RecommendSettings
from tests.conftest import HashingEncoder

K = 5
SMALL = {"ranker": {"max_trees": 150, "min_child_samples": 10}, "threads": 1}


def generated(n_users: int, rng: np.random.Generator, per_user: int = 30) -> tuple[CandidateRows, np.ndarray]:
    """Each person's candidates carry two noisy signals and a switch: which signal tells the truth depends
    on the switch, so no single feature ranks well and a model of their interaction does."""
    history = np.repeat(np.arange(n_users), per_user)
    switch = rng.integers(0, 2, size=len(history)).astype(np.float32)
    relevance = rng.normal(size=len(history))
    noisy = [relevance + rng.normal(scale=2.0, size=len(history)) for _ in range(2)]
    first = np.where(switch == 1, relevance, noisy[0])
    second = np.where(switch == 0, relevance, noisy[1])
    labels = np.zeros(len(history), dtype=np.float32)
    best = relevance.reshape(n_users, per_user).argmax(axis=1) + np.arange(n_users) * per_user
    labels[best] = 1.0
    features = np.column_stack([first, second, switch]).astype(np.float32)
    return CandidateRows(history, np.tile(np.arange(per_user), n_users), features), labels


def mean_ndcg(rows: CandidateRows, labels: np.ndarray, scores: np.ndarray, per_user: int = 30) -> float:
    """One relevant candidate per person: 1 / log2(rank + 2) if it is in the top K."""
    ranks = (-scores.reshape(-1, per_user)).argsort(axis=1).argsort(axis=1)
    rank = ranks[labels.reshape(-1, per_user) == 1]
    return float(np.mean(np.where(rank < K, 1.0 / np.log2(rank + 2), 0.0)))


@pytest.mark.parametrize("negatives", [1.0, 0.3])
def test_ranker_beats_its_best_single_feature_and_contributions_add_up(negatives: float) -> None:
    """Also when each model learns from a sample of the non-picked candidates (`ranker_negatives`)."""
    rng = np.random.default_rng(0)
    train, train_labels = generated(600, rng)
    settings = RecommendSettings(**{**SMALL, "ranker": {**SMALL["ranker"], "negatives": negatives}})  # type: ignore[arg-type]
    ranker = fit_ranker(["first", "second", "switch"], train, train_labels, np.ones(600, dtype=np.int64), K, settings)
    assert ranker.report.auc > 0.5 and ranker.report.logloss > 0 and len(ranker.members) == settings.ranker.models

    test, test_labels = generated(400, np.random.default_rng(1))
    learned = mean_ndcg(test, test_labels, ranker.margin(test.features))
    single = max(mean_ndcg(test, test_labels, test.features[:, j]) for j in range(test.features.shape[1]))
    assert learned > single * 1.1, (learned, single)

    contributions = ranker.contributions(test.features[:50])
    assert contributions.shape == (50, 4)
    assert contributions.sum(axis=1) == pytest.approx(ranker.margin(test.features[:50]), abs=1e-6)


def shop(n_users: int = 160, seed: int = 0) -> tuple[CatalogSnapshot, pd.DataFrame]:
    """Four categories of eight items; each person walks one category in its fixed order from a random start."""
    rng = np.random.default_rng(seed)
    categories = ["Garden", "Kitchen", "Toys", "Books"]
    items = [
        Item(item_id=f"{c[:2]}{i}", title=f"{c} thing {i}", category=[c], price=float(5 + i))
        for c in categories
        for i in range(8)
    ]
    rows = []
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for u in range(n_users):
        category, first = categories[u % 4], int(rng.integers(0, 8))
        for step in range(6):
            item = f"{category[:2]}{(first + step) % 8}"
            rows.append((f"u{u}", item, "purchase", start + pd.Timedelta(days=u % 7 + 3 * step)))
    return CatalogSnapshot.from_items(items), pd.DataFrame(rows, columns=["user_id", "item_id", "type", "timestamp"])


@pytest.fixture(scope="module")
def learned_service() -> RecommendService:
    snapshot, events = shop()
    texts = [f"{t} {c}" for t, c in zip(snapshot.frame["title"], snapshot.frame["category_path"], strict=True)]
    settings = RecommendSettings(
        **{**SMALL, "ranker": {**SMALL["ranker"], "min_positives": 20}},  # type: ignore[arg-type]
        factors=8,
        mf_iterations=5,
        sequential={"max_epochs": 5},
        exclude_purchased={"user": True, "session": True, "item": True, "complements": True},
    )
    return RecommendService.fit(snapshot, events, HashingEncoder().encode(texts), settings, k=K)


def test_service_ranks_with_the_learned_ranker_and_explains_with_its_contributions(
    learned_service: RecommendService, tmp_path: Path
) -> None:
    service = learned_service
    assert service.ranker is not None and service.method == "learned"
    results = service.recommend_user("u0", K)  # u0 walks Garden
    assert results[0].item_id.startswith("Ga")
    assert all(r.signals["fusion"] == "learned" and r.reason and r.signals["contributions"] for r in results)
    history = service.history_of("u0")
    for f in service.rank(history, K, history.items):  # contributions are log-odds shares of the score
        assert sum(f.contributions.values()) == pytest.approx(math.log(f.score / (1 - f.score)), rel=1e-4)
    session = service.recommend_session(["Ki2", "Ki3"], K)  # a session ranks through the same model
    assert session[0].item_id.startswith("Ki") and all(r.reason for r in session)

    service.save(tmp_path)
    loaded = RecommendService.load(tmp_path, service.catalog, service.vectors, service.settings)
    assert loaded.ranker is not None
    assert [r.item_id for r in loaded.recommend_user("u0", K)] == [r.item_id for r in results]


def test_transitions_are_shares_of_what_followed_within_three_steps() -> None:
    sequences = [np.array([0, 1, 2, 3]), np.array([0, 2])]
    shares = transitions(sequences, 5).toarray()
    # after 0: 1 one step later (1.0), 2 two steps later (0.5) and one step later (1.0), 3 three later (0.25)
    assert shares[0] == pytest.approx(np.array([0.0, 1.0, 1.5, 0.25, 0.0]) / 2.75)
    assert shares[3].sum() == 0 and shares[4].sum() == 0  # nothing followed them
    assert shares.sum(axis=1)[:3] == pytest.approx(1.0)


def test_next_features_look_back_from_the_latest_items() -> None:
    snapshot, events = shop(n_users=40)
    data = Interactions.from_events(events, snapshot.frame["item_id"].to_numpy(dtype=object))
    texts = [f"{t} {c}" for t, c in zip(snapshot.frame["title"], snapshot.frame["category_path"], strict=True)]
    vectors, terms = HashingEncoder().encode(texts), term_vectors(texts)
    builder = FeatureBuilder(data, {}, vectors, terms, snapshot.frame, RecommendSettings())
    user = data.user_index("u0")
    assert user is not None
    walked = data.sequences[user]
    assert builder.recent_items(History.of_user(data, user)).tolist() == walked[::-1][:3].tolist()
    session = History.of_items([int(walked[0]), int(walked[1])])
    assert builder.recent_items(session).tolist() == [int(walked[1]), int(walked[0])]
    # everyone walks a category in one order: what follows the session's last item is its successor
    successor = int(walked[2])
    assert builder.next_because(session, np.array([successor])).tolist() == [int(walked[1])]


def test_term_features_find_the_history_item_sharing_the_candidates_words() -> None:
    items = [
        Item(item_id="drill", title="Makita cordless drill"),
        Item(item_id="glue", title="Gorilla wood glue"),
        Item(item_id="saw", title="Makita circular saw"),
        Item(item_id="tape", title="Gorilla duct tape"),
        Item(item_id="mug", title="Ceramic coffee mug"),
    ]
    snapshot = CatalogSnapshot.from_items(items)
    events = pd.DataFrame(
        [("u", "drill", "purchase", "2024-01-01"), ("u", "glue", "purchase", "2024-01-02")],
        columns=["user_id", "item_id", "type", "timestamp"],
    ).assign(timestamp=lambda f: pd.to_datetime(f.timestamp, utc=True))
    data = Interactions.from_events(events, snapshot.frame["item_id"].to_numpy(dtype=object))
    terms = term_vectors(snapshot.texts())
    builder = FeatureBuilder(
        data, {}, HashingEncoder().encode(snapshot.texts()), terms, snapshot.frame, RecommendSettings()
    )
    user = data.user_index("u")
    assert user is not None
    saw, tape, mug = 2, 3, 4
    features = builder._context([History.of_user(data, user)], np.zeros(3, dtype=np.int64), np.array([saw, tape, mug]))
    # the last item was the glue: the tape shares its brand, the saw shares the earlier drill's, the mug nothing
    assert features["terms_last"][1] > 0 and features["terms_last"][0] == 0 == features["terms_last"][2]
    assert features["terms_max"][0] > 0 and features["terms_max"][1] > 0 and features["terms_max"][2] == 0
    assert 0 < features["terms_profile"][0] < features["terms_max"][0]


def test_ranker_learns_from_two_held_out_steps_and_stops_early_on_the_latest() -> None:
    snapshot, events = shop()
    texts = [f"{t} {c}" for t, c in zip(snapshot.frame["title"], snapshot.frame["category_path"], strict=True)]
    vectors = HashingEncoder().encode(texts)
    settings = RecommendSettings(**SMALL, factors=8, mf_iterations=5, sequential={"max_epochs": 3})  # type: ignore[arg-type]
    item_ids = snapshot.frame["item_id"].to_numpy(dtype=object)
    steps = validation_sets(events, item_ids, vectors, settings, leave_one_out=True, steps=2)
    assert len(steps) == 2
    latest, earlier = steps
    # the earlier step was fitted without each person's last two items
    assert latest.data.matrix.sum() - earlier.data.matrix.sum() == pytest.approx(len(earlier.histories))
    seq = earlier.sources["sequential"]
    assert isinstance(seq, SequentialSource) and seq.model.report_ is not None
    assert seq.model.report_.validation_ndcg == []  # it trained for the latest step's epochs, no early stopping
    enough = settings.model_copy(update={"ranker": settings.ranker.model_copy(update={"min_positives": 20})})
    ranker = train_ranker(steps, snapshot.frame, vectors, term_vectors(texts), enough, K)
    assert ranker is not None
    assert ranker.report.users == len(latest.histories) + len(earlier.histories)


def test_a_stray_late_event_does_not_empty_the_next_period_hold_out() -> None:
    _, events = shop()
    stray = events.iloc[[0]].assign(user_id="tester", timestamp=events["timestamp"].max() + pd.Timedelta(days=3650))
    fit_on, held = validation_split(pd.concat([events, stray]), leave_one_out=False, fraction=0.1)
    known = set(fit_on["user_id"].astype(str))
    assert len(held) >= 10 and len([u for u in held if u in known]) >= 10
    assert len(fit_on) == pytest.approx(0.9 * (len(events) + 1), abs=len(events) * 0.05)
