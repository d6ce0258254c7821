"""Open a project's state database: WAL, busy timeout, FULL sync, migrations under the
write lock, and every sqlite failure mapped to a typed one-line error."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import stat
import sys
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from loom_core.errors import SchemaTooNew, StateBusy, StateCorrupt, StateError, StateReadOnly

if TYPE_CHECKING:
    import peewee

SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_BUSY_MS = 5000
SIDE_FILES = ("-wal", "-shm", "-journal")
T = TypeVar("T")


def loom_dir(project: Path) -> Path:
    return _paths(os.fspath(project))[0]


def state_path(project: Path) -> Path:
    return _paths(os.fspath(project))[1]


_PATHS: dict[str, tuple[Path, Path]] = {}


def _paths(project: str) -> tuple[Path, Path]:
    """``(.loom, .loom/state.db)`` of a project, built once (pollers ask for them many times a second)."""
    got = _PATHS.get(project)
    if got is None:
        if len(_PATHS) >= 4096:
            _PATHS.clear()
        base = Path(project) / ".loom"
        got = _PATHS[project] = (base, base / "state.db")
    return got


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


def user_tables(conn: sqlite3.Connection) -> list[str]:
    return sorted(n for (n,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))


def foreign_error(path: Path | str, tables: list[str]) -> StateCorrupt:
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    return StateCorrupt(f"{path} is not a loom state file (it is another program's SQLite database with table(s) "
                        f"{shown}); loom never writes to it — move it away; nothing was changed",
                        code="STORE_FOREIGN")


def kind_of(tables: list[str]) -> str:
    """``empty`` (no table: a store whose creation never committed), ``loom`` or ``foreign``."""
    if not tables:
        return "empty"
    return "loom" if "kernel_schema_versions" in tables else "foreign"


def probe(path: Path) -> str | None:
    """Classify an existing SQLite file without writing to it: ``empty``, ``loom``, ``foreign``;
    None when it cannot be read right now (the caller's normal path reports why)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        tables = user_tables(conn)
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if kind_of(tables) == "foreign":
        raise foreign_error(path, tables)
    return kind_of(tables)


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
    except Exception as exc:
        pw = sys.modules.get("peewee")  # only a writer has loaded it
        if isinstance(exc, sqlite3.Error) or (pw is not None and isinstance(exc, pw.PeeweeException)):
            raise map_error(exc, path) from exc
        raise


def check_kind(path: Path) -> None:
    """What sits at ``path``, by ``lstat`` first, so nothing is ever opened to find out (opening a FIFO
    blocks): absent, or a regular file (directly or through a symlink), passes; a dangling symlink, a
    directory, a FIFO, device or socket is a typed error."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"{path}: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise StateCorrupt(f"{path} is a symlink to {target}, which does not exist; remove the link or "
                               "restore its target (nothing was changed)") from None
        except OSError as exc:
            raise StateError(f"{path} is a symlink to {target}, which cannot be read: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise StateCorrupt(f"{path} is a directory, not a loom state file; nothing was changed")
    if not stat.S_ISREG(st.st_mode):
        raise StateCorrupt(f"{path} is not a regular file (a FIFO, device or socket); nothing was changed")


def preflight(path: Path, *, create: bool) -> None:
    """Refuse what sqlite would silently clobber or fail on obscurely."""
    directory = path.parent
    if not directory.exists():
        if not create:
            raise StateError(f"no loom store in {directory.parent}")
        try:
            from loom_core.store.loomdir import ensure

            ensure(directory)  # .loom/ with its own .gitignore (*)
        except OSError as exc:
            raise StateReadOnly(f"cannot create {directory}: {exc.strerror or exc}") from exc
    check_kind(path)  # absent, or a regular file from here on
    if path.exists():
        size = path.stat().st_size
        if size and not held_elsewhere_in_process(path):  # one of ours is open: it was checked then
            with path.open("rb") as fh:
                head = fh.read(16)
            if head != SQLITE_MAGIC:
                raise StateCorrupt(f"{path} is not an SQLite database (corrupt or foreign file); nothing was changed")
            probe(path)  # another program's database is refused before anything (even a pragma) writes it
        if not os.access(path, os.W_OK):
            raise StateReadOnly(f"{path} is read-only; loom needs to write its state there")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StateReadOnly(f"{directory} is read-only; loom needs to write its state there")


class _NotSqlite(sqlite3.DatabaseError):
    """The file does not start with SQLite's header (yet)."""


def _open_reader(path: Path, timeout: float) -> sqlite3.Connection | None:
    """One attempt at a read-only connection: None when there is no store yet (no file, an empty
    file, or an SQLite file whose creation never committed a table); typed errors for files that
    are not loom's; sqlite3.Error for anything that may pass (a store being created or rotated)."""
    check_kind(path)  # absent, or a regular file from here on
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: {exc.strerror or exc}") from exc
    if st.st_size == 0:
        return None
    head = SQLITE_MAGIC
    if not held_elsewhere_in_process(path):  # else SQLite has it open here: checked then, never reopened raw
        try:
            with path.open("rb") as fh:  # size and header from one inode (a rotation may swap the file meanwhile)
                if os.fstat(fh.fileno()).st_size == 0:
                    return None
                head = fh.read(16)
        except FileNotFoundError:
            return None
    if head != SQLITE_MAGIC:
        raise _NotSqlite("file is not a database")  # retried: a store being created may show a partial header
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout, check_same_thread=False)
    try:
        tables = user_tables(conn)
    except sqlite3.OperationalError as exc:
        conn.close()
        conn = _read_only_dir_reader(path, timeout, exc)  # re-raises exc when that does not apply
        tables = user_tables(conn)
    except BaseException:
        conn.close()
        raise
    kind = kind_of(tables)
    if kind == "loom":
        return conn
    conn.close()
    if kind == "foreign":
        raise foreign_error(path, tables)
    return None


def _read_only_dir_reader(path: Path, timeout: float, exc: sqlite3.Error) -> sqlite3.Connection:
    """A reader for a store in a directory nobody can write (a read-only mount or permissions): SQLite's
    WAL readers need to create ``-shm`` beside it, so read the file as immutable instead — exact, since
    nothing can change it there. Re-raises ``exc`` when the directory is writable."""
    directory = path.parent
    wal = path.with_name(path.name + "-wal")
    if os.access(directory, os.W_OK):
        raise exc
    if wal.exists() and wal.stat().st_size:
        raise StateReadOnly(f"{path} has changes in {wal.name} not yet folded into it, and {directory} is "
                            "read-only; make the directory writable so loom can read them")
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=timeout, check_same_thread=False)


def _tidy(path: Path) -> None:
    """Remove the ``-wal``/``-shm`` a read-only reader of a WAL store leaves behind (it may not delete
    them itself), when there were none before it: SQLite's own close does it — a read-write connection
    that is the last one open (it holds the exclusive lock) checkpoints an empty log and deletes both.
    While any other connection is open nothing is removed; an unwritable file or folder keeps them."""
    if not os.path.exists(str(path) + "-wal") or os.path.lexists(str(path) + "-journal"):
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=0)
    except sqlite3.Error:
        return
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        pass
    finally:
        conn.close()


def read_snapshot(path: Path, fn: Callable[[sqlite3.Connection], T], *, empty: T | None = None,
                  timeout: float = 5.0, attempts: int = 25, pause_s: float = 0.02) -> T | None:
    """Run ``fn(conn)`` on a read-only connection inside one read transaction (one consistent
    snapshot). ``empty`` when there is no store yet. A store being created, or rotated into the
    history, is retried briefly instead of reported as damaged; what persists is a typed error."""
    path = Path(path)
    last: sqlite3.Error | None = None
    for _ in range(attempts):
        bare = not any(os.path.lexists(str(path) + s) for s in SIDE_FILES)
        try:
            conn = _open_reader(path, timeout)
        except sqlite3.Error as exc:
            last = exc
            time.sleep(pause_s)
            continue
        if conn is None:
            return empty
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("BEGIN")
            out = fn(conn)
            conn.execute("COMMIT")
            return out
        except sqlite3.Error as exc:
            last = exc
        finally:
            conn.close()
            if bare:
                _tidy(path)
        time.sleep(pause_s)
    if not path.exists():
        return empty
    assert last is not None
    if isinstance(last, _NotSqlite):
        raise StateCorrupt(f"{path} is not an SQLite database (corrupt or foreign file); nothing was changed")
    raise map_error(last, path)


def connect(path: Path, *, busy_ms: int = DEFAULT_BUSY_MS, create: bool = True) -> peewee.SqliteDatabase:
    path = Path(path)
    preflight(path, create=create)
    import peewee  # the writers' ORM: readers (status, history, verify) never load it

    fresh = not path.exists() or path.stat().st_size == 0
    db = peewee.SqliteDatabase(
        str(path),
        pragmas=[  # for every connection (peewee opens one per thread); WAL mode itself is kept in the file
            ("busy_timeout", busy_ms),
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
                if fresh:  # built unsynced, then made durable with one fsync (see _create)
                    db.execute_sql("PRAGMA synchronous=OFF")
                    db.execute_sql(f"PRAGMA page_size={PAGE_SIZE}")
                db.execute_sql("PRAGMA journal_mode=wal")
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
    if fresh:
        _made_durable(db, path)
    return db


PAGE_SIZE = 1024  # a store is many small tables of small rows: 4 KiB pages left most of each one empty


def _made_durable(db: peewee.SqliteDatabase, path: Path) -> None:
    """A fresh store is created without a sync: its first page (WAL mode) goes to the database file and
    its schema to the WAL, both with synchronous=OFF. The database file is then fsynced once, before the
    first durable commit — a WAL must never rest on a database file the disk has not got (SQLite drops a
    WAL beside an empty database) — and that first commit's sync of the WAL carries the schema with it."""
    with mapped(path):
        fsync_file(path)
        db.execute_sql("PRAGMA synchronous=FULL")


def open_descriptor(path: Path) -> int | None:
    """A descriptor this process already holds on ``path`` (SQLite's own), found in ``/proc/self/fd``.

    Never open and close another descriptor on a database this process has open: POSIX locks belong to
    the process, and closing *any* descriptor of the file drops all of them — SQLite's included. Another
    process could then think it is the last connection and delete the WAL and its index under us."""
    want = os.path.realpath(path)
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}") == want:
                return int(name)
        except OSError:
            continue
    return None


def held_elsewhere_in_process(path: Path) -> bool:
    """Whether a descriptor of this process is open on ``path`` (see :func:`open_descriptor`)."""
    return open_descriptor(path) is not None


def fsync_file(path: Path) -> None:
    """fsync ``path`` through a descriptor SQLite already holds when there is one (see
    :func:`open_descriptor`); else through one of our own (no SQLite lock to lose then)."""
    fd = open_descriptor(path)
    if fd is not None:
        os.fsync(fd)
        return
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new name in ``path`` (a directory) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def close_durably(db: peewee.SqliteDatabase, path: Path) -> None:
    """Close a writer with one sync: every commit is already synced in the WAL, so copy the WAL into the
    database file unsynced, fsync that file once, and only then let the close drop the WAL (whose
    pages are now on disk). SQLite's own close would sync the WAL and the file again."""
    with contextlib.suppress(sqlite3.Error, OSError):
        db.execute_sql("PRAGMA synchronous=OFF")
        busy, _frames, _done = db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        fsync_file(path)
        if busy:  # another connection holds the WAL: it stays, and so does the sync of what is left
            db.execute_sql("PRAGMA synchronous=FULL")
    db.close()


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
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = user_tables(conn)
            if kind_of(tables) == "foreign":
                raise foreign_error(path, tables)
            conn.execute("CREATE TABLE IF NOT EXISTS kernel_schema_versions (component TEXT PRIMARY KEY, "
                         "version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            applied = {v for (v,) in conn.execute("SELECT version FROM kernel_schema_versions")}  # re-read in lock
            if applied and max(applied) > latest:
                raise SchemaTooNew(f"{path} was written by a newer loom (schema {max(applied)} > {latest}); "
                                   "upgrade loom to open it; nothing was changed")
            for version, name, sql in known:
                if version in applied:
                    continue
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
