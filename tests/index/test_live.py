"""Built indexes plus writes since the build: new and rewritten documents score beside built ones."""

from __future__ import annotations

import numpy as np

from shopfusion.catalog.schema import Item
from shopfusion.index.lexical import Bm25Index, LiveLexicalIndex, weighted_tokens
from shopfusion.index.vector import ExactIndex, HnswIndex, LiveVectorIndex

WEIGHTS = {"title": 3.0, "brand": 2.0, "category": 1.5, "attributes": 1.0, "description": 1.0}
ITEMS = [
    Item(item_id="1", title="Stainless steel kitchen faucet", brand="Delta"),
    Item(item_id="2", title="Brass door knob set", brand="Kwikset"),
    Item(item_id="3", title="Cordless drill driver", brand="Ryobi"),
]


def tokens(item: Item) -> list[str]:
    return weighted_tokens(item, WEIGHTS)


def test_a_written_document_scores_as_if_it_had_been_built() -> None:
    built = Bm25Index.build([tokens(i) for i in ITEMS])
    new = Item(item_id="4", title="Brass kitchen faucet", brand="Moen")
    live = LiveLexicalIndex(built, 4, {3: tokens(new)})
    rebuilt = Bm25Index.build([tokens(i) for i in [*ITEMS, new]])
    for query in ("brass faucet", "kitchen", "moen"):  # 'moen' is known only to the written document
        assert np.argmax(live.scores(query)) == np.argmax(rebuilt.scores(query))
    # the same formula and statistics as the built index: a document written again unchanged scores the same
    unchanged = LiveLexicalIndex(built, 3, {0: tokens(ITEMS[0])})
    assert np.allclose(unchanged.scores("steel kitchen faucet"), built.scores("steel kitchen faucet"), rtol=1e-5)
    assert live.scores("moen")[:3].tolist() == [0, 0, 0]


def test_a_rewritten_document_replaces_the_built_one() -> None:
    built = Bm25Index.build([tokens(i) for i in ITEMS])
    live = LiveLexicalIndex(built, 3, {1: tokens(Item(item_id="2", title="Oak garden bench"))})
    assert live.scores("door knob")[1] == 0 and live.scores("garden bench")[1] > 0


def unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_live_vectors_over_exact_and_hnsw_agree() -> None:
    vectors, query = unit(300), unit(1, seed=1)[0]
    written = {5: query, 300: -query, 301: query * 0.9}  # 5 rewritten, 300 and 301 new; 302 deleted since
    for built in (ExactIndex(vectors), HnswIndex.build(vectors)):
        live = LiveVectorIndex(built, 303, written)
        positions, scores = live.search(query, 3)
        assert np.all(np.diff(scores) <= 0)
        assert positions[:2].tolist() == [5, 301] and 300 not in positions.tolist()
        subset = live.subset_scores(query, np.array([5, 300, 302, 7]))
        assert np.allclose(subset[:2], [1.0, -1.0], atol=1e-5) and subset[2] == -np.inf
        assert np.isclose(subset[3], vectors[7] @ query, atol=1e-5)
    exact = LiveVectorIndex(ExactIndex(vectors), 303, written).all_scores(query)
    assert exact is not None and exact[302] == -np.inf and np.isclose(exact[5], 1.0)
    assert LiveVectorIndex(HnswIndex.build(vectors), 303, written).all_scores(query) is None
