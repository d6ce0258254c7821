"""The one way a read opens a store: a live store or an older archive (an SQLite file) through
``db.read_snapshot``; an archive kept as a compressed image (``codec.pack_image``) unpacked into memory
with ``sqlite3.Connection.deserialize`` — read-only, nothing written beside it."""

from __future__ import annotations

import os
import sqlite3
import stat
from _blake2 import blake2b  # what hashlib.blake2b is, without loading OpenSSL (a status read's start-up)
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from loom_core.errors import StateCorrupt
from loom_core.store import codec
from loom_core.store import db as dbmod

T = TypeVar("T")
LIVE_NAME = "state.db"  # a live store is never an image: its reads go straight to SQLite
_CACHE: OrderedDict[bytes, bytes] = OrderedDict()  # digest of an archive's bytes -> its unpacked image
_CACHE_SIZE = 2


def _image_bytes(path: Path) -> bytes | None:
    """The database image an archive at ``path`` holds; None when ``path`` is not a compressed image
    (absent, not a regular file, an SQLite file, or a live store), left to ``db.read_snapshot``."""
    if path.name == LIVE_NAME:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size < len(codec.IMAGE_MAGIC):
        return None
    if dbmod.held_elsewhere_in_process(path):  # SQLite has it open here: an SQLite file, never reopened raw
        return None
    try:
        with path.open("rb") as fh:
            head = fh.read(len(codec.IMAGE_MAGIC))
            if not codec.is_image(head):
                return None
            blob = head + fh.read()
    except OSError:
        return None
    key = blake2b(blob, digest_size=16).digest()  # by content: an archive edited in place is read anew
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    try:
        data = codec.unpack_image(blob)
    except ValueError as exc:
        raise StateCorrupt(f"{path} is a compressed loom archive that cannot be read: {exc}; "
                           "nothing was changed") from None
    _CACHE[key] = data
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return data


def image_connection(data: bytes, path: Path | str) -> sqlite3.Connection:
    """A read-only in-memory connection over a database image (``path`` names it in errors)."""
    if data[:16] != dbmod.SQLITE_MAGIC:
        raise StateCorrupt(f"{path} holds a compressed image that is not an SQLite database; nothing was changed")
    if data[18:20] == b"\x02\x02":  # a WAL-mode header: an in-memory database must read it as rollback mode
        data = data[:18] + b"\x01\x01" + data[20:]
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        conn.deserialize(data)
        conn.execute("PRAGMA query_only=ON")
    except sqlite3.Error as exc:
        conn.close()
        raise dbmod.map_error(exc, path) from exc
    return conn


def read_image(data: bytes, path: Path | str, fn: Callable[[sqlite3.Connection], T], *,
               empty: T | None = None) -> T | None:
    """``fn(conn)`` over a database image, in one read transaction, as ``db.read_snapshot`` runs it."""
    conn = image_connection(data, path)
    try:
        with dbmod.mapped(path):
            tables = dbmod.user_tables(conn)
            kind = dbmod.kind_of(tables)
            if kind == "foreign":
                raise dbmod.foreign_error(path, tables)
            if kind == "empty":
                return empty
            conn.row_factory = sqlite3.Row
            conn.execute("BEGIN")
            out = fn(conn)
            conn.execute("COMMIT")
            return out
    finally:
        conn.close()


def snapshot(path: Path, fn: Callable[[sqlite3.Connection], T], *, empty: T | None = None) -> T | None:
    """``fn(conn)`` on a read-only connection to the store at ``path``, in one consistent snapshot:
    ``empty`` when there is no store yet; typed errors for what is not a loom store."""
    path = Path(path)
    data = _image_bytes(path)
    if data is None:
        return dbmod.read_snapshot(path, fn, empty=empty)
    return read_image(data, path, fn, empty=empty)
