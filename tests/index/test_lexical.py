"""BM25 index: field weights, typo tolerance, compound words, synonyms, CJK, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopfusion.catalog.schema import Item
from shopfusion.index.lexical import Bm25Index, weighted_tokens
from shopfusion.index.synonyms import SynonymError, Synonyms

ITEMS = [
    Item(item_id="1", title="Stainless steel kitchen faucet", brand="Delta", category="Kitchen > Faucets"),
    Item(item_id="2", title="Brass door knob set", brand="Kwikset", category="Hardware > Door"),
    Item(item_id="3", title="Cordless drill driver 18 volt", brand="Ryobi", category="Tools > Drills"),
    Item(item_id="4", title="Television wall mount", brand="Sanus", category="Electronics > Mounts"),
    Item(item_id="5", title="红色连衣裙 夏季", brand="Lily", category="服装"),
    Item(item_id="6", title="Garden hose 50 ft", description="A kitchen sink adapter is included", brand="Flexzilla"),
]
WEIGHTS = {"title": 3.0, "brand": 2.0, "category": 1.5, "attributes": 1.0, "description": 1.0}


@pytest.fixture
def index() -> Bm25Index:
    return Bm25Index.build([weighted_tokens(i, WEIGHTS) for i in ITEMS])


def best(index: Bm25Index, query: str) -> str | None:
    scores = index.scores(query)
    return ITEMS[int(np.argmax(scores))].item_id if scores.max() > 0 else None


def test_plain_query(index: Bm25Index) -> None:
    assert best(index, "kitchen faucet") == "1"


def test_title_outweighs_description(index: Bm25Index) -> None:
    scores = index.scores("kitchen")
    assert scores[0] > scores[5] > 0


def test_typo_query_finds_the_item(index: Bm25Index) -> None:
    assert best(index, "cordles dril") == "3"
    assert best(index, "stainles faucett") == "1"


def test_compound_word_is_split(index: Bm25Index) -> None:
    assert index.query_tokens("doorknob") == ["door", "knob"]
    assert best(index, "doorknob") == "2"


def test_unknown_words_score_nothing(index: Bm25Index) -> None:
    assert best(index, "xyzzyq") is None


def test_cjk_query(index: Bm25Index) -> None:
    assert best(index, "红色连衣裙") == "5"


def test_synonyms_expand_queries(index: Bm25Index) -> None:
    synonyms = Synonyms.parse("tv, television  # both ways\nspigot => faucet\n")
    expanded = Bm25Index(index._model, index.size, synonyms)
    assert expanded.query_tokens("tv") == ["televis"]  # 'tv' itself is not in the catalogue
    assert best(expanded, "tv") == "4"
    assert best(expanded, "spigot") == "1"
    assert best(index, "spigot") is None
    assert Synonyms.parse("spigot => faucet").expand(["faucet"]) == ["faucet"]  # one way only


def test_bad_synonyms_line_is_reported() -> None:
    with pytest.raises(SynonymError, match="line 2"):
        Synonyms.parse("tv, television\nthe => a\n")


def test_save_and_load(index: Bm25Index, tmp_path: Path) -> None:
    index.save(tmp_path / "lex")
    loaded = Bm25Index.load(tmp_path / "lex")
    assert np.allclose(loaded.scores("drill"), index.scores("drill"))
