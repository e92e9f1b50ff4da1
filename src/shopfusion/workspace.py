"""The workspace folder: config, store, embedding cache, indexes and models, written crash-safely."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shopfusion.settings import CONFIG_FILE, Settings

MANIFEST_FILE = "manifest.json"  # every model version has one; a folder without it is not (yet) a version


class WorkspaceError(RuntimeError):
    pass


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `target` (file or folder) that replaces it only on success.

    A crash or kill before the end leaves the previous `target` untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    try:
        yield tmp
        if tmp.is_dir() and target.exists():
            retired = target.with_name(f".{target.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(target, retired)
            os.replace(tmp, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def write_text_atomic(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def store_path(self) -> Path:
        return self.root / "store.sqlite"

    @property
    def embedding_cache_path(self) -> Path:
        return self.root / "embeddings" / "cache.sqlite"

    @property
    def models_dir(self) -> Path:
        """One folder per build (a model version) and CURRENT naming the one that is served."""
        return self.root / "models"

    def model_versions(self) -> list[str]:
        if not self.models_dir.exists():
            return []
        return sorted(p.name for p in self.models_dir.iterdir() if (p / MANIFEST_FILE).exists())

    @property
    def current_version(self) -> str | None:
        pointer = self.models_dir / "CURRENT"
        return pointer.read_text().strip() if pointer.exists() else None

    @property
    def artifacts_dir(self) -> Path:
        """The served build: indexes and fitted models (a path that does not exist before the first build)."""
        return self.models_dir / (self.current_version or "none")

    def activate(self, version: str) -> None:
        """Serve `version` from now on (the switch is one atomic rename: new builds and rollbacks alike)."""
        if version not in self.model_versions():
            raise WorkspaceError(f"no model version {version!r}; have {', '.join(self.model_versions()) or 'none'}")
        write_text_atomic(self.models_dir / "CURRENT", version)

    def prune_versions(self, keep: int) -> None:
        current = self.current_version
        for old in self.model_versions()[:-keep]:
            if old != current:
                shutil.rmtree(self.models_dir / old, ignore_errors=True)

    @property
    def rejects_dir(self) -> Path:
        return self.root / "rejects"

    @classmethod
    def init(cls, root: Path, settings: Settings | None = None) -> Workspace:
        ws = cls(root.resolve())
        ws.root.mkdir(parents=True, exist_ok=True)
        if not ws.config_path.exists():
            write_text_atomic(ws.config_path, settings.to_toml() if settings else Settings.template())
        return ws

    @classmethod
    def open(cls, root: Path) -> Workspace:
        ws = cls(root.resolve())
        if not ws.config_path.exists():
            raise WorkspaceError(f"{ws.root} is not a ShopFusion workspace (run `shopfusion init {root}` first)")
        return ws

    @property
    def settings(self) -> Settings:
        return Settings.load(self.root)

    def store_url(self, settings: Settings | None = None) -> str:
        url = (settings or self.settings).store_url
        return url or f"sqlite:///{self.store_path}"
