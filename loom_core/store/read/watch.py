"""Cheap change detection on a task store, for a waiter that must wake when another process writes.

A :class:`StoreWatch` keeps one read-only connection open and asks ``PRAGMA data_version`` (a counter
SQLite bumps when another connection commits): no file is read, no snapshot taken. Only when it moved
(or the file itself was replaced: a rotation into the history, a reset) does the caller re-read what
it waits for, with :func:`pending_gate_id`. The store stays the source of truth.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from loom_core.store import db as dbmod


class StoreWatch:
    """``changed()`` is True on the first call and whenever the store may have changed since the last."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._ino: tuple[int, int] | None = None
        self._version: int | None = None
        self._first = True

    def changed(self) -> bool:
        first, self._first = self._first, False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            gone = self._ino is not None
            self.close()
            return first or gone
        ino = (st.st_dev, st.st_ino)
        if ino != self._ino or self._conn is None:
            self.close()
            self._ino = ino
            try:
                self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1.0,
                                             check_same_thread=False)
                self._version = self._data_version()
            except sqlite3.Error:
                self.close()
            return True
        try:
            version = self._data_version()
        except sqlite3.Error:
            self.close()
            return True
        moved, self._version = version != self._version, version
        return first or moved

    def _data_version(self) -> int:
        assert self._conn is not None
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._ino, self._version = None, None, None


def pending_gate_id(path: Path) -> str | None:
    """The ``gate_event_id`` of the gate waiting for an answer in the store at ``path`` (None: no gate, no store)."""
    def read(conn: sqlite3.Connection) -> str | None:
        d = conn.execute("SELECT pending_user_answer FROM driver_state").fetchone()
        pua = json.loads(d[0]) if d and d[0] else None
        return pua.get("gate_event_id") if isinstance(pua, dict) else None

    return dbmod.read_snapshot(Path(path), read)
