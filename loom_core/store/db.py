"""Open a project's state database: WAL, busy timeout, FULL sync, migrations under the
write lock, and every sqlite failure mapped to a typed one-line error."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import peewee

from ..errors import SchemaTooNew, StateBusy, StateCorrupt, StateError, StateReadOnly

SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_BUSY_MS = 5000


def loom_dir(project: Path) -> Path:
    return Path(project) / ".loom"


def state_path(project: Path) -> Path:
    return loom_dir(project) / "state.db"


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every shipped migration, in order."""
    out = []
    pkg = resources.files("loom_core.store.migrations")
    for entry in pkg.iterdir():
        m = re.match(r"^(\d+)_.*\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


LATEST_SCHEMA = max(v for v, _, _ in migrations())


def _statements(sql: str) -> list[str]:
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def map_error(exc: BaseException, path: Path | str) -> StateError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StateBusy(f"{path} is busy: another loom process is writing it (timed out waiting)")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StateReadOnly(f"{path} cannot be written (read-only file or directory)")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StateCorrupt(f"{path} is not a valid loom state file ({exc}); nothing was changed")
    if "no such table" in text:
        return StateCorrupt(f"{path} is missing loom tables ({exc}); nothing was changed", code="STORE_SCHEMA_MISSING")
    return StateError(f"{path}: {exc}")


@contextlib.contextmanager
def mapped(path: Path | str) -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, peewee.PeeweeException) as exc:
        raise map_error(exc, path) from exc


def preflight(path: Path, *, create: bool) -> None:
    """Refuse what sqlite would silently clobber or fail on obscurely."""
    directory = path.parent
    if not directory.exists():
        if not create:
            raise StateError(f"no loom store in {directory.parent}")
        try:
            from .loomdir import ensure

            ensure(directory)  # .loom/ with its own .gitignore (*)
        except OSError as exc:
            raise StateReadOnly(f"cannot create {directory}: {exc.strerror or exc}") from exc
    if path.exists():
        if path.is_dir():
            raise StateCorrupt(f"{path} is a directory, not a loom state file; nothing was changed")
        size = path.stat().st_size
        if size:
            with path.open("rb") as fh:
                head = fh.read(16)
            if head != SQLITE_MAGIC:
                raise StateCorrupt(f"{path} is not an SQLite database (corrupt or foreign file); nothing was changed")
        if not os.access(path, os.W_OK):
            raise StateReadOnly(f"{path} is read-only; loom needs to write its state there")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StateReadOnly(f"{directory} is read-only; loom needs to write its state there")


def connect(path: Path, *, busy_ms: int = DEFAULT_BUSY_MS, create: bool = True) -> peewee.SqliteDatabase:
    path = Path(path)
    preflight(path, create=create)
    db = peewee.SqliteDatabase(
        str(path),
        pragmas=[
            ("busy_timeout", busy_ms),
            ("journal_mode", "wal"),
            ("synchronous", "full"),
            ("foreign_keys", 1),
            ("wal_autocheckpoint", 4000),
        ],
        lock_type="IMMEDIATE",
        check_same_thread=False,
    )
    deadline = time.monotonic() + busy_ms / 1000
    while True:
        try:
            with mapped(path):
                db.connect(reuse_if_open=True)
                db.execute_sql("SELECT count(*) FROM sqlite_master").fetchone()
            break
        except StateBusy:
            # a cold first open racing another process's WAL switch: retry within the timeout
            if not db.is_closed():
                db.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
    migrate(db, path)
    return db


def migrate(db: peewee.SqliteDatabase, path: Path) -> None:
    """Bring the store to the latest schema. Checked on every open (two tiny reads): a store
    deleted and made again at the same path is simply a new store."""
    known = migrations()
    latest = known[-1][0]
    with mapped(path):
        conn = db.connection()
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='kernel_schema_versions'").fetchone()
        if row:
            applied = {v for (v,) in conn.execute("SELECT version FROM kernel_schema_versions")}
            if applied and max(applied) > latest:
                raise SchemaTooNew(f"{path} was written by a newer loom (schema {max(applied)} > {latest}); "
                                   "upgrade loom to open it; nothing was changed")
            if {v for v, _, _ in known} <= applied:
                return
        fresh = False
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS kernel_schema_versions (component TEXT PRIMARY KEY, "
                         "version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            applied = {v for (v,) in conn.execute("SELECT version FROM kernel_schema_versions")}  # re-read in lock
            if applied and max(applied) > latest:
                raise SchemaTooNew(f"{path} was written by a newer loom (schema {max(applied)} > {latest}); "
                                   "upgrade loom to open it; nothing was changed")
            for version, name, sql in known:
                if version in applied:
                    continue
                fresh = True
                try:
                    for stmt in _statements(sql):
                        conn.execute(stmt)
                except sqlite3.Error as exc:
                    raise StateError(f"migration {name} failed on {path}: {exc}", code="SCHEMA_MIGRATION_FAILED") from exc
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
                conn.execute("INSERT INTO kernel_schema_versions VALUES (?, ?, ?)", (name[:-4], version, stamp))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        if fresh:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
