"""Leaf path credits: they add up to LightGBM's raw score, and credit the feature the model actually uses."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from shopfusion.rank.trees import LeafContributions


def test_credits_add_up_to_the_raw_score_and_name_the_feature_used() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take the model's default direction
    y = 2.0 * np.nan_to_num(x[:, 1]) + 0.1 * rng.normal(size=600)
    train, valid = lgb.Dataset(x[:500], y[:500]), lgb.Dataset(x[500:], y[500:])
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 7, "verbose": -1, "seed": 0},
        train,
        num_boost_round=300,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(5, verbose=False)],
    )
    assert booster.num_trees() > 1

    credits = LeafContributions.of(booster)(booster, x)

    assert credits.shape == (600, 5)  # four features and the base value
    np.testing.assert_allclose(credits.sum(axis=1), booster.predict(x, raw_score=True), atol=1e-9)
    assert np.abs(credits[:, :-1]).mean(axis=0).argmax() == 1
    assert np.abs(credits[:, 1]).mean() > 10 * np.abs(credits[:, [0, 2, 3]]).mean()
