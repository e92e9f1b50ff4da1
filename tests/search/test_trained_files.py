"""The trained search's files: the fine-tuned catalogue index is kept for an unchanged catalogue."""

from __future__ import annotations

from pathlib import Path


def test_fine_tuned_index_is_kept_for_an_unchanged_catalogue(tmp_path: Path) -> None:
    import numpy as np

    from shopfusion.search.trained_files import tuned_index

    class CountingEncoder:
        model_id, dim = "tuned@1", 4

        def __init__(self) -> None:
            self.encoded = 0

        def encode(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
            self.encoded += len(texts)
            return np.eye(4, dtype=np.float32)[[len(t) % 4 for t in texts]]

    encoder = CountingEncoder()
    first = tuned_index(tmp_path, ["a", "bb", "ccc"], encoder, exact_max_items=10)
    again = tuned_index(tmp_path, ["a", "bb", "ccc"], encoder, exact_max_items=10)
    assert encoder.encoded == 3  # the second engine load read the kept index
    query = np.array([0, 1, 0, 0], dtype=np.float32)
    assert again.search(query, 1)[0].tolist() == first.search(query, 1)[0].tolist() == [0]
    tuned_index(tmp_path, ["a", "bb", "cccc"], encoder, exact_max_items=10)
    assert encoder.encoded == 6  # another catalogue: encoded and indexed again


def test_saved_learned_search_loads_only_where_training_kept_it(tmp_path: Path) -> None:
    import numpy as np

    from shopfusion.rank.ltr import LambdaRankTrees, RankingData
    from shopfusion.search.learned import LearnedSearch
    from shopfusion.search.ltr_features import FIRST_STAGE, Signals
    from shopfusion.search.trained_files import (
        fine_tuned_bi_encoder,
        load_learned,
        save_learned,
        serves_learned,
        write_report,
    )
    from shopfusion.settings import SearchTrainingSettings

    rng = np.random.default_rng(0)
    width = len(FIRST_STAGE)

    def data(n: int) -> RankingData:
        parts = [(x, (x[:, 0] > 0.7).astype(float)) for x in rng.random((n, 20, width)).astype(np.float32)]
        return RankingData.concat(parts, width)

    settings = SearchTrainingSettings()
    ranker_settings = settings.ranker.model_copy(update={"min_child_samples": 10})
    first = LambdaRankTrees.fit_graded(ranker_settings, FIRST_STAGE, data(40), data(10), eval_at=10, seed=13, threads=1)
    ids, titles = ["a", "b", "c"], ["red shoe", "blue shoe", "green hat"]
    signals = Signals(None, titles, titles, np.array([0.0, 1.5, 0.0], dtype=np.float32))  # type: ignore[arg-type]
    save_learned(LearnedSearch(signals, first), tmp_path, ids)
    assert not serves_learned(tmp_path)  # no report: nothing trained here
    write_report(tmp_path, {"used": False})
    assert load_learned(tmp_path, None, ids, titles, titles, None, settings) is None  # type: ignore[arg-type]
    write_report(tmp_path, {"used": True})
    loaded = load_learned(tmp_path, None, ["c", "b"], titles[::-1][1:], titles[::-1][1:], None, settings)  # type: ignore[arg-type]
    assert loaded is not None and loaded.second is None and loaded.cross is None
    assert loaded.signals.prior.tolist() == [0.0, 1.5]  # the prior follows the item ids, not positions
    x = data(1).features
    np.testing.assert_allclose(loaded.first.raw(x), first.raw(x))
    assert fine_tuned_bi_encoder(tmp_path) is None
