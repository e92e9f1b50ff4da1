"""Items as weighted bags of the shop's own terms: the exact words (brands, product lines, model numbers,
sizes) that a sentence embedding blurs, for recommendation features and the sequential model's inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from shopfusion.index.text import analyze


def term_vectors(texts: Sequence[str], min_items: int = 2) -> sp.csr_matrix:
    """Item × term TF-IDF (sublinear term counts, rows L2-normalised: a row product is a cosine) over the
    search analyzer's terms (stemmed, Chinese segmented, numbers and units normalised) that at least
    `min_items` items share — a term of one item relates it to nothing. Items without such a term get an
    empty row; a catalogue without any shared term gets zero columns."""
    if len(texts) == 0:
        return sp.csr_matrix((0, 0), dtype=np.float32)
    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, min_df=min(min_items, len(texts)))
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no term at all survives (e.g. empty titles)
        return sp.csr_matrix((len(texts), 0), dtype=np.float32)
    return sp.csr_matrix(matrix, dtype=np.float32)
