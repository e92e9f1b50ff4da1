from pathlib import Path

import pytest
from pydantic import ValidationError

from shopfusion.settings import CONFIG_FILE, Settings


def test_stages_nest_in_the_file_and_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / CONFIG_FILE).write_text("[recommend.sequential]\ndim = 32\n\n[search.training.ranker]\nleaves = 15\n")
    monkeypatch.setenv("SHOPFUSION_RECOMMEND__RANKER__MODELS", "5")
    settings = Settings.load(tmp_path)
    assert settings.recommend.sequential.dim == 32
    assert settings.search.training.ranker.leaves == 15
    assert settings.recommend.ranker.models == 5
    assert settings.recommend.sequential.max_len == Settings().recommend.sequential.max_len  # defaults kept


@pytest.mark.parametrize(
    ("toml", "new_key"),
    [
        ("[recommend]\nsequential_dim = 32\n", "recommend.sequential.dim"),
        ("[recommend]\nranker_models = 2\n", "recommend.ranker.models"),
        ("[search_training]\nbi_encoder_epochs = 1\n", "search.training.bi_encoder_epochs"),
    ],
)
def test_an_old_flat_key_names_its_new_key(tmp_path: Path, toml: str, new_key: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(toml)
    with pytest.raises(ValidationError, match=new_key.replace(".", r"\.")):
        Settings.load(tmp_path)


def test_an_old_flat_environment_variable_names_its_new_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPFUSION_RECOMMEND__SEQUENTIAL_MODELS", "3")
    with pytest.raises(ValidationError, match=r"recommend\.sequential\.models"):
        Settings()


def test_the_search_ranker_keeps_its_own_defaults() -> None:
    search, recommend = Settings().search.training.ranker, Settings().recommend.ranker
    assert (search.max_trees, search.min_child_samples, search.early_stopping) == (500, 50, 30)
    assert (recommend.max_trees, recommend.min_child_samples, recommend.early_stopping) == (600, 200, 40)
