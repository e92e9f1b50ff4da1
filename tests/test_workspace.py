from __future__ import annotations

from pathlib import Path

import pytest

from shopfusion.settings import Settings
from shopfusion.workspace import Workspace, WorkspaceError, atomic_path


def test_settings_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.init(tmp_path / "ws")
    assert ws.settings == Settings()  # the template only documents the defaults
    assert "# [encoder]" in ws.config_path.read_text()
    ws.config_path.write_text('[search]\nfusion = "rrf"\n[encoder]\nbatch_size = 16\n')
    assert ws.settings.search.fusion == "rrf"
    monkeypatch.setenv("SHOPFUSION_ENCODER__BATCH_SIZE", "8")
    assert ws.settings.encoder.batch_size == 8  # the environment wins over the file
    assert ws.settings.search.fusion == "rrf"


def test_unknown_setting_is_an_error(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.config_path.write_text("[encoder]\nmodle = 'x'\n")
    with pytest.raises(ValueError, match="modle"):
        _ = ws.settings


def test_open_requires_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="shopfusion init"):
        Workspace.open(tmp_path)


def test_default_store_is_sqlite_in_the_workspace(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    assert ws.store_url() == f"sqlite:///{ws.root / 'store.sqlite'}"
    assert Settings(store_url="postgresql+psycopg://h/db").store_url == "postgresql+psycopg://h/db"


def test_atomic_path_keeps_the_old_folder_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "artifacts"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "v").write_text("1")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "v").write_text("2")
        raise RuntimeError("crash while building")
    assert (target / "v").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["artifacts"]  # no temp leftovers
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "v").write_text("3")
    assert (target / "v").read_text() == "3"


def test_versions_activate_and_prune(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    assert ws.current_version is None and not ws.artifacts_dir.exists()
    for version in ("v1", "v2", "v3"):
        (ws.models_dir / version).mkdir(parents=True)
        (ws.models_dir / version / "manifest.json").write_text("{}")
    ws.activate("v1")
    assert ws.artifacts_dir == ws.models_dir / "v1"
    ws.prune_versions(keep=1)
    assert ws.model_versions() == ["v1", "v3"]  # the served version is never pruned
    with pytest.raises(WorkspaceError, match="no model version"):
        ws.activate("v2")
