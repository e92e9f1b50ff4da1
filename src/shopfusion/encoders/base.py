"""The interface every text encoder offers to indexing, search and recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class TextEncoder(Protocol):
    @property
    def model_id(self) -> str:
        """Identifies the weights: cache entries of different models never mix."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (inner product = cosine)."""
        ...
