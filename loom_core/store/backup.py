"""Back up and restore a project's task store (the MCP ``pipeline_backup`` / ``pipeline_restore``).

A backup is a consistent SQL dump (one read snapshot). A restore builds a new database beside the live one
and swaps it in with one rename: from SQL, only what a dump of a loom store holds is executed (its tables'
``CREATE TABLE``, ``INSERT INTO`` them, the transaction brackets; anything else is ``RESTORE_REJECTED``); a
binary restore takes an SQLite file that is a loom store. The caller holds the project lock.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from pathlib import Path

from loom_core.errors import LoomError
from loom_core.store import codec
from loom_core.store import db as dbmod

TABLES = ("pipeline_state", "pipeline_counters", "pipeline_gate_counters", "driver_state", "phases", "agent_records",
          "pending_agents", "agent_verdicts", "findings", "gates", "audit", "kernel_idempotency_ledger", "transcripts",
          "kernel_schema_versions")
_NAME = r'"?(\w+)"?'
_ALLOWED = (re.compile(r"^BEGIN(?: TRANSACTION)?;$", re.I), re.compile(r"^COMMIT;$", re.I),
            re.compile(rf"^CREATE TABLE (?:IF NOT EXISTS )?{_NAME}\s*\(", re.I),
            re.compile(rf"^INSERT INTO {_NAME}(?:\s*\([^)]*\))? VALUES\s*\(", re.I))
MAX_RESTORE_BYTES = 256 * 1024 * 1024


def dump(path: Path, dest: Path) -> int:
    """Write the store at ``path`` as SQL to ``dest`` (atomically); the bytes written."""
    def lines(conn: sqlite3.Connection) -> list[str]:
        conn.row_factory = None
        return list(conn.iterdump())

    got = dbmod.read_snapshot(path, lines)
    if got is None:
        raise LoomError(f"no task store in {path.parent.parent}", code="NO_ACTIVE_TASK")
    text = "".join(stmt + "\n" for stmt in got)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, dest)
    return len(text.encode("utf-8"))


def statements(sql: str) -> list[str]:
    """The dump's statements, each checked against what a loom dump may hold."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            stmt = buf.strip()
            buf = ""
            if stmt:
                _check(stmt)
                out.append(stmt)
    if buf.strip():
        raise LoomError("the SQL ends in the middle of a statement", code="RESTORE_REJECTED")
    return out


def _check(stmt: str) -> None:
    for rx in _ALLOWED:
        m = rx.match(stmt)
        if m:
            if m.groups() and m.group(1) not in TABLES:
                raise LoomError(f"a statement names a table a loom store does not have: {m.group(1)}",
                                code="RESTORE_REJECTED")
            return
    raise LoomError(f"statement not allowed in a restore: {stmt[:80]!r}", code="RESTORE_REJECTED")


def restore_sql(path: Path, source: Path) -> None:
    if source.stat().st_size > MAX_RESTORE_BYTES:
        raise LoomError(f"{source} is larger than {MAX_RESTORE_BYTES // 2**20} MB", code="RESTORE_REJECTED")
    stmts = statements(source.read_text(encoding="utf-8"))
    tmp = _tmp(path)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            for stmt in stmts:
                conn.execute(stmt)
        finally:
            conn.close()
        _check_store(tmp)
        _swap(tmp, path)
    except sqlite3.Error as exc:
        raise LoomError(f"the SQL could not be restored: {exc}", code="RESTORE_REJECTED") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def restore_binary(path: Path, source: Path) -> None:
    """From an SQLite file, or an archive from ``.loom/history`` (a compressed image, unpacked)."""
    with open(source, "rb") as fh:
        head = fh.read(16)
    image = codec.is_image(head)
    if head != dbmod.SQLITE_MAGIC and not image:
        raise LoomError(f"{source} is not an SQLite database", code="RESTORE_REJECTED")
    tmp = _tmp(path)
    try:
        if image:
            try:
                tmp.write_bytes(codec.unpack_image(source.read_bytes()))
            except ValueError as exc:
                raise LoomError(f"{source}: {exc}", code="RESTORE_REJECTED") from None
        else:
            shutil.copyfile(source, tmp)
        _check_store(tmp)
        _swap(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _tmp(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".restore-{os.getpid()}.db")
    if tmp.exists():
        tmp.unlink()
    return tmp


def _check_store(tmp: Path) -> None:
    conn = sqlite3.connect(f"file:{tmp}?mode=ro", uri=True)
    try:
        tables = set(dbmod.user_tables(conn))
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    except sqlite3.Error as exc:
        raise LoomError(f"the restored database is unreadable: {exc}", code="RESTORE_REJECTED") from exc
    finally:
        conn.close()
    if not ok or not {"pipeline_state", "driver_state", "audit", "kernel_schema_versions"} <= tables:
        raise LoomError("the restored database is not a loom task store", code="RESTORE_REJECTED")


def _swap(tmp: Path, path: Path) -> None:
    """Replace the live store (its WAL and shared memory go first: they belong to the old file)."""
    for side in dbmod.SIDE_FILES:
        side_path = Path(str(path) + side)
        if side_path.exists():
            side_path.unlink()
    os.replace(tmp, path)
