"""The engine a server answers with, swapped atomically after a retrain or a rollback."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from shopfusion.engine import Engine
from shopfusion.pipeline import build
from shopfusion.workspace import Workspace


@dataclass
class RetrainStatus:
    running: bool = False
    last_version: str | None = None
    last_error: str | None = None


class LiveEngine:
    """Requests read `.engine` once each; a new engine is fully loaded before it replaces the old one,
    so no request ever sees a half-loaded model and there is no downtime."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.engine = self._load()
        self.status = RetrainStatus(last_version=ws.current_version)
        self._lock = threading.Lock()
        self._again = False

    def _load(self) -> Engine:
        engine = Engine(self.ws)
        engine.search("warm up", 1)  # load the indexes and the encoder before the first request
        return engine

    def reload(self) -> str | None:
        """Serve whatever version the workspace's CURRENT names now (after `shopfusion models rollback`)."""
        self.engine = self._load()
        return self.ws.current_version

    def activate(self, version: str) -> None:
        self.ws.activate(version)
        self.reload()

    def retrain(self) -> bool:
        """Build a new version in a background thread. If one is running already, another build follows it
        (it may have read the store before the latest change) and False is returned."""
        with self._lock:
            if self.status.running:
                self._again = True
                return False
            self.status.running = True
        thread = threading.Thread(target=self._retrain, name="shopfusion-retrain", daemon=True)
        thread.start()
        return True

    def _retrain(self) -> None:
        again = True
        while again:
            try:
                build(self.ws)
                self.status.last_version = self.reload()
                self.status.last_error = None
            except Exception as exc:  # a failed build leaves the served version untouched
                self.status.last_error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                again, self._again = self._again, False
                self.status.running = again
