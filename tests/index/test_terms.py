"""Items as weighted bags of shared terms."""

from __future__ import annotations

import numpy as np

from shopfusion.index.terms import term_vectors


def test_items_sharing_a_brand_are_similar_and_unique_words_are_dropped() -> None:
    texts = ["Makita cordless drill 18V", "Makita circular saw", "Gorilla wood glue", "Gorilla duct tape"]
    terms = term_vectors(texts)
    similarity = (terms @ terms.T).toarray()
    assert similarity[0, 1] > 0 and similarity[2, 3] > 0
    assert similarity[0, 2] == 0 and similarity[1, 3] == 0
    assert terms.shape[1] == 2  # only 'makita' and 'gorilla' are shared by two items
    assert np.allclose(np.diag(similarity), 1.0)


def test_catalogues_without_shared_terms_get_empty_rows() -> None:
    assert term_vectors(["alpha", "beta"]).shape == (2, 0)
    assert term_vectors([]).shape == (0, 0)
    assert term_vectors(["", ""]).shape == (2, 0)
