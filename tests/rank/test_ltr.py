"""LambdaRank trees: learn a combination no single feature gives; contributions sum to the score."""

from __future__ import annotations

import numpy as np

from shopfusion.metrics import ndcg_at_k
from shopfusion.rank.ltr import LambdaRankTrees, RankingData, grade_levels, lightgbm_names
from shopfusion.settings import TreeRankerSettings

SETTINGS = TreeRankerSettings(
    max_trees=500, min_child_samples=20, feature_fraction=0.9, bagging_fraction=0.9, early_stopping=30
)


def _fit(train: list[tuple[np.ndarray, np.ndarray]], valid: list[tuple[np.ndarray, np.ndarray]]) -> LambdaRankTrees:
    return LambdaRankTrees.fit_graded(
        SETTINGS,
        ["a", "b", "noise"],
        RankingData.concat(train, 3),
        RankingData.concat(valid, 3),
        eval_at=10,
        seed=13,
        threads=2,
    )


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
    ranker = _fit(train, valid)
    best_single = max(_mean_ndcg(test, lambda x, j=j: x[:, j]) for j in range(3))
    learned = _mean_ndcg(test, ranker.raw)
    assert learned > best_single + 0.05
    x = test[0][0]
    contributions = ranker.contributions(x)
    assert contributions.shape == (30, 4)  # three features and the bias
    np.testing.assert_allclose(contributions.sum(axis=1), ranker.raw(x), rtol=1e-6, atol=1e-6)
    importance = ranker.importance()
    assert importance["noise"] < min(importance["a"], importance["b"])


def test_saved_ranker_predicts_and_explains_the_same() -> None:
    rng = np.random.default_rng(1)
    ranker = _fit(_queries(rng, 80), _queries(rng, 20))
    x = rng.random((10, 3))
    loaded = LambdaRankTrees.from_string(ranker.to_string())
    assert loaded.trees == ranker.trees
    np.testing.assert_allclose(loaded.raw(x), ranker.raw(x))
    np.testing.assert_allclose(loaded.contributions(x), ranker.contributions(x), atol=1e-9)


def test_grade_levels_keep_linear_gains() -> None:
    levels, gains = grade_levels(np.array([0.0, 1.33, 2.0, 0.67, 2.0, -1.0]))
    assert gains == [0.0, 0.67, 1.33, 2.0]
    assert [gains[level] for level in levels] == [0.0, 1.33, 2.0, 0.67, 2.0, 0.0]


def test_binary_labels_with_lightgbm_gains_and_names_lightgbm_rejects() -> None:
    """Recommendation's use: picked / not picked, feature names with ':' (LightGBM rejects them)."""
    rng = np.random.default_rng(2)

    def data(n: int) -> RankingData:
        parts = [(x, (x[:, 0] + 0.3 * rng.random(30) > 0.9).astype(np.float32)) for x in rng.random((n, 30, 2))]
        return RankingData.concat(parts, 2)

    names = ["source:als", "source:ease"]
    ranker = LambdaRankTrees.fit(SETTINGS, names, data(100), data(30), eval_at=5, seed=0, threads=1)
    assert ranker.validation_ndcg is not None and ranker.validation_ndcg > 0.5
    assert list(ranker.booster.feature_name()) == lightgbm_names(names) == ["source__als", "source__ease"]
    assert set(ranker.importance()) == set(names)
    x = rng.random((5, 2))
    np.testing.assert_allclose(ranker.raw(x, threads=1), ranker.raw(x))
    assert LambdaRankTrees.from_string(ranker.to_string(), names).feature_names == names
