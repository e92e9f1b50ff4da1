"""The sequential model learns order, and reaches items with no history through their text."""

from __future__ import annotations

import numpy as np

from shopfusion.index.terms import term_vectors
from shopfusion.recommend.sequential import SequentialRecommender
from shopfusion.settings import SequentialSettings

N_ITEMS = 30


def cycle_sequences(n: int, rng: np.random.Generator, length: int = 8) -> list[list[int]]:
    """Each person walks the catalogue in one fixed order (i → i+1) from a random start."""
    starts = rng.integers(0, N_ITEMS, size=n)
    return [[(s + step) % N_ITEMS for step in range(length)] for s in starts]


def small_settings(**overrides: float) -> SequentialSettings:
    base = dict(dim=32, layers=1, heads=2, max_len=8, dropout=0.1, batch_size=32, max_epochs=25, patience=4, models=1)
    return SequentialSettings(**{**base, **overrides})  # type: ignore[arg-type]


def test_learns_a_deterministic_order() -> None:
    rng = np.random.default_rng(0)
    text = rng.normal(size=(N_ITEMS, 16)).astype(np.float32)
    model = SequentialRecommender(small_settings()).fit(cycle_sequences(300, rng), text)
    held_out = cycle_sequences(100, np.random.default_rng(1), length=5)
    scores = model.scores([s[:-1] for s in held_out])
    accuracy = float(np.mean(scores.argmax(axis=1) == np.array([s[-1] for s in held_out])))
    assert accuracy > 0.8, accuracy  # chance is 1/30
    assert model.report_ is not None and model.report_.best_epoch >= 1 and model.report_.validation_ndcg


def test_cold_item_is_reached_through_its_text() -> None:
    rng = np.random.default_rng(0)
    n_cold = 5
    text = rng.normal(size=(N_ITEMS + n_cold, 16)).astype(np.float32)
    text[N_ITEMS] = text[10]  # the first cold item reads like item 10; the others read like nothing known
    model = SequentialRecommender(small_settings(max_epochs=15)).fit(cycle_sequences(300, rng), text, validate=False)
    scores = model.scores([[7, 8, 9]])[0]  # item 10 comes next
    cold = scores[N_ITEMS:]
    assert cold.argmax() == 0  # of the items nobody has bought, the one whose text matches wins
    assert cold[0] > np.median(scores[:N_ITEMS])  # and it scores above the typical known item


def test_cold_item_is_reached_through_the_terms_it_shares() -> None:
    """No text vectors to go by (all equal); each person buys within one product line, named in the titles."""
    lines = ["makita", "gorilla", "bosch", "stanley", "dewalt", "ryobi"]
    per_line = 5
    known = len(lines) * per_line
    texts = [f"{lines[i // per_line]} tool" for i in range(known)] + [f"{line} tool" for line in lines]  # + 1 new each
    rng = np.random.default_rng(0)
    sequences = [(line * per_line + rng.permutation(per_line)).tolist() for line in rng.integers(0, len(lines), 300)]
    blank = np.zeros((len(texts), 16), dtype=np.float32)
    settings = small_settings(max_epochs=15)
    model = SequentialRecommender(settings).fit(sequences, blank, item_terms=term_vectors(texts), validate=False)
    plain = SequentialRecommender(settings).fit(sequences, blank, validate=False)
    histories = [[line * per_line, line * per_line + 1] for line in range(len(lines))]
    new_items = model.scores(histories)[:, known:]
    assert new_items.argmax(axis=1).tolist() == list(range(len(lines)))  # the new item of the person's line
    assert plain.scores(histories)[:, known:].argmax(axis=1).tolist() != list(range(len(lines)))  # no terms: luck


def test_sequential_source_reads_each_users_time_order() -> None:
    import pandas as pd

    from shopfusion.recommend.interactions import Interactions
    from shopfusion.recommend.sequential import SequentialSource
    from shopfusion.recommend.sources import History

    rng = np.random.default_rng(0)
    rows = []
    for user, sequence in enumerate(cycle_sequences(300, rng)):
        for step, item in enumerate(sequence):
            rows.append(
                (f"u{user}", f"i{item:02d}", "purchase", pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=step))
            )
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "type", "timestamp"]).sample(frac=1.0, random_state=0)
    item_ids = np.array([f"i{i:02d}" for i in range(N_ITEMS)], dtype=object)
    data = Interactions.from_events(events, item_ids)
    first = data.user_index("u0")
    assert first is not None
    expected = [int(s[1:]) for s in events[events.user_id == "u0"].sort_values("timestamp").item_id]
    assert data.sequences[first].tolist() == expected  # shuffled rows, time order restored
    text = rng.normal(size=(N_ITEMS, 16)).astype(np.float32)
    source = SequentialSource(text, small_settings()).fit(data)
    scores = source.scores(History.of_user(data, first))
    assert scores.min() > 0 and abs(scores.sum() - 1.0) < 1e-4
    assert scores.argmax() == (expected[-1] + 1) % N_ITEMS  # the item that comes next in the cycle
    session = History.of_items([3, 4, 5])
    assert source.scores(session).argmax() == 6 and source.because(session, np.array([6])).tolist() == [5]


def test_averaged_networks_score_by_their_mean_probability() -> None:
    import copy

    rng = np.random.default_rng(0)
    text = rng.normal(size=(N_ITEMS, 16)).astype(np.float32)
    model = SequentialRecommender(small_settings(models=2)).fit(cycle_sequences(300, rng), text)
    assert len(model.networks_) == 2
    first, second = model.networks_
    assert not np.allclose(first.item_ids.weight.detach().numpy(), second.item_ids.weight.detach().numpy())
    held_out = cycle_sequences(50, np.random.default_rng(1), length=5)
    histories = [s[:-1] for s in held_out]
    members = []
    for network in model.networks_:
        single = copy.copy(model)
        single.networks_ = [network]
        logits = single.scores(histories)
        members.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    averaged = np.exp(model.scores(histories))
    assert np.allclose(averaged, np.mean(members, axis=0), atol=1e-5)
    accuracy = float(np.mean(averaged.argmax(axis=1) == np.array([s[-1] for s in held_out])))
    assert accuracy > 0.8, accuracy


def test_early_stopped_network_scores_with_its_best_weights() -> None:
    """The tables cached while validating the last epoch must not outlive the best epoch's weights."""
    rng = np.random.default_rng(0)
    text = rng.normal(size=(N_ITEMS, 16)).astype(np.float32)
    pairs = [(s[:-1], s[-1]) for s in cycle_sequences(50, np.random.default_rng(1), length=5)]
    model = SequentialRecommender(small_settings(patience=2)).fit(cycle_sequences(300, rng), text, validation=pairs)
    assert model.report_ is not None and model.report_.best_epoch < model.report_.epochs  # it went past its best
    served = model.scores([h for h, _ in pairs])
    model.networks_[0]._served = {}  # recomputed from the weights it holds
    assert np.allclose(served, model.scores([h for h, _ in pairs]), atol=1e-5)
