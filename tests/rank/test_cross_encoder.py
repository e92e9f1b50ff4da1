"""Cross-encoder: a few steps on judged pairs teach it which texts answer which query, and the fast inference
paths (bfloat16, int8) rank as the float32 model does."""

from __future__ import annotations

import random

import numpy as np
import pytest

from shopfusion.encoders.sentence import EncoderUnavailable, resolve_model
from shopfusion.rank.cross_encoder import CrossEncoder, Judged

COLOURS = ["red", "blue", "green", "yellow", "black", "white"]
THINGS = ["mug", "lamp", "chair", "rug", "kettle", "shelf"]


def _pairs(rng: random.Random, n: int) -> list[Judged]:
    """A query names a colour and a thing; the matching title is relevant, a title of another thing is not."""
    pairs = []
    for _ in range(n):
        colour, thing = rng.choice(COLOURS), rng.choice(THINGS)
        other = rng.choice([t for t in THINGS if t != thing])
        pairs.append(Judged(f"{colour} {thing}", f"{colour.title()} {thing.title()} for the home", 1.0))
        pairs.append(Judged(f"{colour} {thing}", f"{rng.choice(COLOURS).title()} {other.title()} classic", 0.0))
    return pairs


def _accuracy(model: CrossEncoder, pairs: list[Judged]) -> float:
    """Share of queries whose relevant title scores above the irrelevant one."""
    scores = model.score_pairs([p.query for p in pairs], [p.text for p in pairs])
    return float(np.mean(scores[0::2] > scores[1::2]))


@pytest.fixture(scope="module")
def trained() -> tuple[CrossEncoder, list[Judged], list[float]]:
    try:
        path = resolve_model("all-MiniLM-L6-v2")
    except EncoderUnavailable:
        pytest.skip("the packaged MiniLM is not installed")
    rng = random.Random(0)
    train, held_out = _pairs(rng, 96), _pairs(rng, 40)
    model = CrossEncoder(path, max_length=24, precision="float32")
    report = model.fit(train, lambda m: _accuracy(m, held_out), epochs=2, batch_size=16, lr=1e-4, head_lr=3e-3)
    return model, held_out, report.validation


def test_training_teaches_which_text_answers_the_query(
    trained: tuple[CrossEncoder, list[Judged], list[float]],
) -> None:
    _, _, validation = trained
    assert max(validation[1:]) > validation[0]
    assert max(validation) >= 0.9


@pytest.mark.parametrize("fast", ["int8", "bfloat16"])
def test_fast_inference_ranks_like_float32(trained: tuple[CrossEncoder, list[Judged], list[float]], fast: str) -> None:
    model, held_out, _ = trained
    queries, texts = [p.query for p in held_out], [p.text for p in held_out]
    exact = model.score_pairs(queries, texts)
    model.precision, model.quantize = ("float32", True) if fast == "int8" else ("bfloat16", False)
    model._fast = None  # the scoring copy is made for the precision asked
    try:
        approx = model.score_pairs(queries, texts)
    finally:
        model.precision, model.quantize, model._fast = "float32", False, None
    assert np.corrcoef(exact, approx)[0, 1] > 0.98
    assert float(np.mean((approx[0::2] > approx[1::2]) == (exact[0::2] > exact[1::2]))) >= 0.95


def test_scores_do_not_depend_on_batching(trained: tuple[CrossEncoder, list[Judged], list[float]]) -> None:
    model, held_out, _ = trained
    queries, texts = [p.query for p in held_out], [p.text for p in held_out]
    together = model.score_pairs(queries, texts)
    one_by_one = np.array([model.scores(q, [t])[0] for q, t in zip(queries, texts, strict=True)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)
