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
    def artifacts_dir(self) -> Path:
        """Built indexes and fitted models, replaced as one folder by `build`."""
        return self.root / "artifacts"

    @property
    def rejects_dir(self) -> Path:
        return self.root / "rejects"

    @classmethod
    def init(cls, root: Path, settings: Settings | None = None) -> Workspace:
        ws = cls(root.resolve())
        ws.root.mkdir(parents=True, exist_ok=True)
        if not ws.config_path.exists():
            write_text_atomic(ws.config_path, (settings or Settings.model_construct()).to_toml())
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
