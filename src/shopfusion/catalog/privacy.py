"""Pseudonymised user ids: a keyed hash replaces each user id before it is stored or looked up."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from pathlib import Path

from shopfusion.workspace import Workspace, write_text_atomic

SECRET_FILE = "pseudonym.key"


class Pseudonymiser:
    """HMAC-SHA256 with a per-workspace secret: stable ids for modelling, no raw ids at rest.

    Without the secret file the mapping cannot be recomputed; delete it to make stored ids unlinkable.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_workspace(cls, root: Path) -> Pseudonymiser:
        path = root / SECRET_FILE
        if not path.exists():
            write_text_atomic(path, secrets.token_hex(32))
            path.chmod(0o600)
        return cls(bytes.fromhex(path.read_text().strip()))

    def __call__(self, user_id: str) -> str:
        return "p_" + hmac.new(self._secret, user_id.encode(), hashlib.sha256).hexdigest()[:24]


def user_key_function(ws: Workspace) -> Callable[[str], str]:
    """How this workspace turns a user id into the key it stores and looks up."""
    if ws.settings.pseudonymise_users:
        return Pseudonymiser.for_workspace(ws.root)
    return str
