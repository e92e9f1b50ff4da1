"""The learned ranking: explanations that sum to the score, and cross-encoder scores remembered only when asked."""

from __future__ import annotations

import pytest


def test_explanations_name_the_strongest_signals_and_sum_to_the_score() -> None:
    import numpy as np

    from shopfusion.rank.ltr import LambdaRankTrees, RankingData
    from shopfusion.search.learned import LearnedHit, ranked_hits
    from shopfusion.search.ltr_features import FIRST_STAGE
    from shopfusion.settings import SearchTrainingSettings

    rng = np.random.default_rng(0)
    width = len(FIRST_STAGE)

    def queries(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        parts = []
        for _ in range(n):
            x = rng.random((20, width)).astype(np.float32)
            parts.append((x, np.where(x[:, FIRST_STAGE.index("tuned")] > 0.7, 2.0, 0.0)))
        return parts

    settings = SearchTrainingSettings().ranker.model_copy(update={"min_child_samples": 10})
    train, valid = RankingData.concat(queries(60), width), RankingData.concat(queries(20), width)
    ranker = LambdaRankTrees.fit_graded(settings, FIRST_STAGE, train, valid, eval_at=10, seed=13, threads=2)
    x = queries(1)[0][0]
    hits = ranked_hits(np.arange(20), ranker.raw(x), x, ranker)
    for hit in hits:  # computed on demand, one hit at a time, and still exact
        assert sum(hit.contributions.values()) == pytest.approx(hit.score, abs=1e-6)
    best = max(hits, key=lambda h: h.score)
    assert max(best.contributions, key=lambda name: best.contributions[name]) == "tuned"

    named = LearnedHit(7, 1.2, lambda: {"tuned": 0.9, "phrase": 0.4, "prior": -0.2, "bias": 0.1})
    assert (
        named.reason()
        == "close in meaning to what shoppers chose for such searches; the title contains the query as typed"
    )
    assert LearnedHit(8, 0.0).reason() == "ranked by the learned model"


def test_cross_encoder_scores_each_pair_once_when_memoised() -> None:
    import numpy as np

    from shopfusion.search.learned import LearnedSearch

    class CountingCross:
        def __init__(self) -> None:
            self.pairs = 0

        def scores(self, query: str, texts: list[str]) -> np.ndarray:
            self.pairs += len(texts)
            return np.array([float(len(t)) for t in texts], dtype=np.float32)

    class FakeSignals:
        texts = ("a", "bb", "ccc", "dddd")

    cross = CountingCross()
    learned = LearnedSearch(FakeSignals(), None, cross)  # type: ignore[arg-type]
    assert learned.cross_scores("q", [0, 1]).tolist() == [1.0, 2.0]
    assert learned.cross_scores("q", [1, 0]).tolist() == [2.0, 1.0]
    assert cross.pairs == 4  # serving: no memory between calls
    memoised = learned.with_cross_memo()
    memoised.cross_scores("q", [0, 1, 2])
    assert memoised.cross_scores("q", [2, 3, 0]).tolist() == [3.0, 4.0, 1.0]
    assert cross.pairs == 4 + 3 + 1  # only item 3 was new
    memoised.cross_scores("other query", [0])
    assert cross.pairs == 9
    learned.cross_scores("q", [0])
    assert cross.pairs == 10  # the served search keeps no memory
    known = learned.with_cross_memo({("q", 3): 7.0})
    assert known.cross_scores("q", [3]).tolist() == [7.0] and cross.pairs == 10  # given scores are used as they are
