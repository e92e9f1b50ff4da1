"""The recommendation service end to end on generated data: surfaces, cold start, rules, explanations,
bad input and persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfusion.recommend.service import RecommendService
from shopfusion.settings import RecommendSettings
from tests.recommend import synthetic

FAST = {"factors": 8, "mf_iterations": 5, "threads": 1}


def _service(**settings: object) -> RecommendService:
    snapshot = synthetic.catalog(out_of_stock=("A5",))
    return RecommendService.fit(
        snapshot,
        synthetic.events(),
        synthetic.vectors(snapshot),
        RecommendSettings(**{**FAST, **settings}),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def service() -> RecommendService:
    return _service(fusion="auto")  # the weight fusion; the learned ranker is tested in test_ranker.py


def test_known_user_gets_their_cluster_with_explanations(service: RecommendService) -> None:
    results = service.recommend_user("u1", 4)  # odd users shop home
    assert len(results) == 4
    assert {r.item_id for r in results[:3]} <= set(synthetic.HOME)
    for r in results:
        assert r.reason and r.signals["contributions"]
        assert set(r.signals["contributions"]) <= set(service.sources) | {"pin"}
        assert r.signals["weights"] == {n: w for n, w in service.weights.items() if w > 0}


def test_weights_were_chosen_on_train_and_cover_fitted_sources(service: RecommendService) -> None:
    assert set(service.weights) == set(service.sources)
    assert any(w > 0 for w in service.weights.values())
    assert {
        "popularity",
        "trending",
        "repeat",
        "item_knn",
        "als",
        "ease",
        "content",
        "complements",
        "sequential",
    } == set(service.sources)


def test_out_of_stock_never_returned_and_purchased_excluded_when_asked(service: RecommendService) -> None:
    everything = service.recommend_user("u0", 100)
    assert "A5" not in {r.item_id for r in everything}
    bought = set(synthetic.events().query("user_id == 'u0'")["item_id"])
    fresh = service.recommend_user("u0", 100, exclude_purchased=True)
    assert fresh and not ({r.item_id for r in fresh} & bought)


def test_cold_start_user_and_category_context(service: RecommendService) -> None:
    results = service.recommend_user("nobody", 3)
    assert len(results) == 3
    assert all(r.reason.startswith(("popular", "trending")) for r in results)
    kitchen = service.recommend_user("nobody", 5, category="Home > Kitchen")
    assert {r.item_id for r in kitchen} == {"A8", "A9"}
    assert all("Kitchen" in r.reason for r in kitchen)


def test_session_and_empty_session(service: RecommendService) -> None:
    results = service.recommend_session(["A8", "unknown-id"], 3)
    assert "A8" not in {r.item_id for r in results}
    assert {r.item_id for r in results} <= set(synthetic.HOME)
    assert len(service.recommend_session([], 3)) == 3


def test_new_item_reachable_through_content(service: RecommendService) -> None:
    similar = service.similar_items("A1", 10)
    assert "A11" in {r.item_id for r in similar}  # never bought, similar text
    own = service.similar_items("A11", 3)  # the new item itself has neighbours
    assert "A2" in {r.item_id for r in own}
    assert any("similar to" in r.reason for r in own)


def test_complements_from_the_same_order(service: RecommendService) -> None:
    results = service.complements("A1", 3)
    assert results[0].item_id == "A4"
    assert results[0].reason == "bought together with “Red running shoes”"
    assert results[0].signals["because"]["complements"] == "A1"


def test_bad_input(service: RecommendService) -> None:
    with pytest.raises(ValueError):
        service.recommend_user("u0", 0)
    with pytest.raises(KeyError):
        service.similar_items("nope")
    huge = service.recommend_user("u0", 10_000)
    assert len(huge) == len(service.catalog) - 1  # everything but the out-of-stock item
    assert len({r.item_id for r in huge}) == len(huge)


def test_configured_weights_rules_and_round_trip(tmp_path: Path) -> None:
    service = _service(source_weights={"popularity": 1.0}, sources=["popularity", "repeat", "content"], pin={"A10": 1})
    assert service.weights == {"popularity": 1.0, "repeat": 0.0, "content": 0.0}
    first = service.recommend_user("u0", 3)
    assert first[0].item_id == "A10" and first[0].reason == "featured by the shop"
    service.save(tmp_path)
    again = RecommendService.load(tmp_path, service.catalog, service.vectors, service.settings)
    assert [r.item_id for r in again.recommend_user("u0", 3)] == [r.item_id for r in first]
