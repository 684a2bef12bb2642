"""A registry reader that caches the snapshot and refreshes it in the background.

A reader never blocks on a refresh once it holds a snapshot: when the snapshot is older than
`cache_ttl_seconds`, the stale one is returned and a single background thread checks the
registry's version and fetches the new snapshot only when the version moved.
"""

from __future__ import annotations

import threading
import time

from potluck.registry.snapshot import RegistrySnapshot
from potluck.registry.sql import SqlRegistryStore


class CachedRegistry:
    def __init__(self, store: SqlRegistryStore, cache_ttl_seconds: float) -> None:
        self.store = store
        self.ttl = cache_ttl_seconds
        self._snapshot: RegistrySnapshot | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def snapshot(self) -> RegistrySnapshot:
        snap = self._snapshot
        if snap is None:
            return self.refresh()
        if time.monotonic() - self._loaded_at > self.ttl:
            self._refresh_in_background()
        return snap

    def refresh(self) -> RegistrySnapshot:
        """Load the registry now (blocking)."""
        snap = self.store.load()
        with self._lock:
            self._snapshot = snap
            self._loaded_at = time.monotonic()
        return snap

    def _refresh_in_background(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True

        def run() -> None:
            try:
                current = self._snapshot
                if current is not None and self.store.version() == current.version:
                    # Unchanged: one cheap query instead of parsing every object again.
                    with self._lock:
                        self._loaded_at = time.monotonic()
                else:
                    self.refresh()
            except Exception:
                with self._lock:
                    self._loaded_at = time.monotonic()
            finally:
                with self._lock:
                    self._refreshing = False

        threading.Thread(target=run, name="potluck-registry-refresh", daemon=True).start()

    def invalidate(self, snapshot: RegistrySnapshot | None = None) -> None:
        with self._lock:
            self._snapshot = snapshot
            self._loaded_at = time.monotonic()
