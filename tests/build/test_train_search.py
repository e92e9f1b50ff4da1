"""`train search` refuses what it cannot train from before loading any model."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfusion.build.artifacts import BuildError
from shopfusion.build.train_search import train_search
from shopfusion.workspace import Workspace


def test_an_unbuilt_workspace_is_not_trained(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not been built"):
        train_search(Workspace.init(tmp_path / "ws"), log=lambda _: None)
