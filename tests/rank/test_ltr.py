"""LambdaMART ranker: learns a combination no single feature gives; contributions sum to the score."""

from __future__ import annotations

import numpy as np

from shopfusion.metrics import ndcg_at_k
from shopfusion.rank.ltr import LambdaMartRanker, RankingData, grade_levels


def _queries(rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Relevance needs both features high; each alone is a weak signal, plus a noise feature."""
    parts = []
    for _ in range(n):
        x = rng.random((30, 3))
        grades = np.where((x[:, 0] > 0.6) & (x[:, 1] > 0.6), 2.0, np.where(x[:, 0] + x[:, 1] > 1.2, 0.5, 0.0))
        parts.append((x, grades))
    return parts


def _mean_ndcg(parts: list[tuple[np.ndarray, np.ndarray]], score: object) -> float:
    values = []
    for x, grades in parts:
        s = score(x)  # type: ignore[operator]
        order = np.argsort(-s, kind="stable")
        judged = {str(i): float(g) for i, g in enumerate(grades)}
        values.append(ndcg_at_k([str(i) for i in order], judged, 10))
    return float(np.mean(values))


def test_ranker_beats_its_best_single_feature_and_explains_its_scores() -> None:
    rng = np.random.default_rng(0)
    train, valid, test = _queries(rng, 200), _queries(rng, 60), _queries(rng, 100)
    ranker = LambdaMartRanker(["a", "b", "noise"], min_data_in_leaf=20).fit(
        RankingData.concat(train, 3), RankingData.concat(valid, 3)
    )
    best_single = max(_mean_ndcg(test, lambda x, j=j: x[:, j]) for j in range(3))
    learned = _mean_ndcg(test, ranker.predict)
    assert learned > best_single + 0.05
    x = test[0][0]
    contributions = ranker.contributions(x)
    assert contributions.shape == (30, 4)  # three features and the bias
    np.testing.assert_allclose(contributions.sum(axis=1), ranker.predict(x), rtol=1e-6, atol=1e-6)
    importance = ranker.importance()
    assert importance["noise"] < min(importance["a"], importance["b"])


def test_saved_ranker_predicts_and_explains_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    ranker = LambdaMartRanker(["a", "b", "noise"], min_data_in_leaf=20).fit(
        RankingData.concat(_queries(rng, 80), 3), RankingData.concat(_queries(rng, 20), 3)
    )
    ranker.save(tmp_path / "r.txt")
    x = rng.random((10, 3))
    loaded = LambdaMartRanker.load(tmp_path / "r.txt")
    np.testing.assert_allclose(loaded.predict(x), ranker.predict(x))
    np.testing.assert_allclose(loaded.contributions(x), ranker.contributions(x), atol=1e-9)


def test_grade_levels_keep_linear_gains() -> None:
    levels, gains = grade_levels(np.array([0.0, 1.33, 2.0, 0.67, 2.0, -1.0]))
    assert gains == [0.0, 0.67, 1.33, 2.0]
    assert [gains[level] for level in levels] == [0.0, 1.33, 2.0, 0.67, 2.0, 0.0]
