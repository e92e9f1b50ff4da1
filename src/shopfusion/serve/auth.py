"""API keys with scopes, stored hashed in the workspace, and per-key token-bucket rate limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from shopfusion.workspace import write_text_atomic

KEYS_FILE = "api_keys.json"
RECHECK_SECONDS = 1.0  # keys created or revoked by another process take effect within this time


class Scope(StrEnum):
    READ = "read"  # search, recommendations
    WRITE = "write"  # events, items
    ADMIN = "admin"  # everything, incl. retrain and user erasure


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    digest: str
    scopes: tuple[Scope, ...]
    rate_per_minute: int | None
    created_at: str

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Keys live in WORKSPACE/api_keys.json; only their SHA-256 digests are kept, never the secret."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[str, ApiKey] = {}
        self._verified: dict[str, ApiKey] = {}  # plaintext → key, for keys of the loaded file that verified
        self._loaded_mtime: float | None = None
        self._checked_at = 0.0
        self._refresh()

    def _refresh(self) -> None:
        """Pick up keys created or revoked by another process (e.g. the CLI while the server runs)."""
        self._checked_at = time.monotonic()
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime == self._loaded_mtime:
            return
        self._verified = {}
        keys = {}
        for raw in json.loads(self.path.read_text()) if mtime is not None else []:
            raw["scopes"] = tuple(Scope(s) for s in raw["scopes"])
            keys[raw["key_id"]] = ApiKey(**raw)
        self._keys, self._loaded_mtime = keys, mtime

    def create(self, name: str, scopes: list[Scope], rate_per_minute: int | None = None) -> str:
        """Returns the plaintext key once: `sf_<key id>_<secret>`."""
        self._refresh()
        key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(24)
        plaintext = f"sf_{key_id}_{secret}"
        self._keys[key_id] = ApiKey(
            key_id, name, _digest(plaintext), tuple(scopes), rate_per_minute, datetime.now(UTC).isoformat()
        )
        self._save()
        return plaintext

    def revoke(self, key_id: str) -> bool:
        self._refresh()
        found = self._keys.pop(key_id, None) is not None
        if found:
            self._save()
        return found

    def list(self) -> list[ApiKey]:
        self._refresh()
        return list(self._keys.values())

    def verify(self, plaintext: str) -> ApiKey | None:
        """The key, if `plaintext` is a current one. Asked on every request: for known keys the file is looked
        at again at most every RECHECK_SECONDS (revocations by another process take that long), and a key that
        verified is not hashed again until the file changes; an unknown key id looks at once (a new key)."""
        if time.monotonic() - self._checked_at > RECHECK_SECONDS:
            self._refresh()
        known = self._verified.get(plaintext)
        if known is not None:
            return known
        parts = plaintext.split("_", 2)
        if len(parts) != 3 or parts[0] != "sf":
            return None
        if parts[1] not in self._keys:
            self._refresh()
        key = self._keys.get(parts[1])
        if key is None or not hmac.compare_digest(key.digest, _digest(plaintext)):
            return None
        self._verified[plaintext] = key
        return key

    def _save(self) -> None:
        self._verified = {}
        rows = [{**asdict(k), "scopes": [s.value for s in k.scopes]} for k in self._keys.values()]
        write_text_atomic(self.path, json.dumps(rows, indent=2))
        self._loaded_mtime = self.path.stat().st_mtime


class RateLimiter:
    """Token bucket per caller: `rate` requests per minute, bursts up to the same number."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, caller: str, rate_per_minute: int) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - last) * rate_per_minute / 60.0)
            allowed = tokens >= 1.0
            self._buckets[caller] = (tokens - 1.0 if allowed else tokens, now)
            return allowed
