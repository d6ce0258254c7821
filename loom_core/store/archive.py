"""Task lifecycle on disk: rotation of a finished store into ``.loom/history/``, reset, and
reading the history index."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from loom_core.errors import KernelRefusal, StateError
from loom_core.store import db as dbmod
from loom_core.store import loomdir
from loom_core.store.read import TASK_FIELDS

SIDE_FILES = dbmod.SIDE_FILES


def history_dir(project: Path) -> Path:
    return dbmod.loom_dir(project) / "history"


def index_path(project: Path) -> Path:
    return history_dir(project) / "index.jsonl"


def _compact_copy(live: Path, tmp: Path) -> None:
    """``VACUUM INTO`` a rollback-journal file with no free pages (nothing of the WAL beside it), written
    unsynced and fsynced once."""
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{live}?mode=ro", uri=True)
    try:
        src.execute("PRAGMA synchronous=OFF")  # the copy's own syncs: one fsync below does it
        src.execute("VACUUM INTO ?", (str(tmp),))
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise StateError(f"could not copy {live} into the history: {exc}; the live store was kept",
                         code="ARCHIVE_COPY_FAILED") from exc
    finally:
        src.close()
    dbmod.fsync_file(tmp)


def _read_frozen(path: Path) -> dict[str, Any] | None:
    """The task row of a finished file, read without locks or side files (``immutable``)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        row = conn.execute(f"SELECT {', '.join(TASK_FIELDS)} FROM pipeline_state WHERE id = 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return None if row is None else dict(zip(TASK_FIELDS, tuple(row), strict=True))


def _read_task(path: Path) -> dict[str, Any] | None:
    row = dbmod.read_snapshot(path, lambda conn: conn.execute(
        f"SELECT {', '.join(TASK_FIELDS)} FROM pipeline_state WHERE id = 1").fetchone())
    return None if row is None else dict(zip(TASK_FIELDS, tuple(row), strict=True))


def archive(project: Path, *, reason: str, now: str, force: bool = False, store: Any = None) -> Path | None:
    """Move the live store to ``history/<task_id>.db``. Returns the archive path, or None when
    there was nothing to archive. Refuses an in-progress task unless ``force``."""
    project = Path(project)
    live = dbmod.state_path(project)
    if not live.exists():
        return None
    if store is not None:
        store.close(checkpoint=True)
    else:
        with contextlib.suppress(sqlite3.Error):
            c = sqlite3.connect(str(live))
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            c.close()
    info = _read_task(live)
    if info is None:
        return None  # a store without a task row is never archived
    if info["status"] == "in_progress" and not force:
        raise KernelRefusal(f"task {info['task_id']} is still in progress; use --force to archive it anyway",
                            code="PROJECT_TASK_ACTIVE")
    hist = history_dir(project)
    loomdir.ensure(hist.parent)
    hist.mkdir(parents=True, exist_ok=True)
    dest = hist / f"{info['task_id']}.db"
    n = 1
    while dest.exists():
        n += 1
        dest = hist / f"{info['task_id']}.{n}.db"
    tmp = dest.with_suffix(".db.tmp")
    _compact_copy(live, tmp)
    copied = _read_frozen(tmp)
    if not copied or copied["task_id"] != info["task_id"]:
        tmp.unlink(missing_ok=True)
        raise StateError(f"archive of {info['task_id']} did not verify; the live store was kept",
                         code="ARCHIVE_VERIFY_FAILED")
    os.replace(tmp, dest)
    dbmod.fsync_dir(hist)  # the archive's name is durable before the live store goes
    line = {**info, "db_file": str(dest.relative_to(project)), "archived_at": now,
            "reason": "discarded" if force and info["status"] == "in_progress" else reason}
    with index_path(project).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
    for suffix in ("",) + SIDE_FILES:
        Path(str(live) + suffix).unlink(missing_ok=True)
    return dest


def history(project: Path) -> list[dict[str, Any]]:
    """The index entries, oldest first. Each gets ``ref``: the name that addresses exactly that archive
    (``loom replay REF``, ``loom verify --task REF``) — its task id, or the archive file's name when an
    older loom archived two tasks under one id."""
    path = index_path(Path(project))
    if not path.exists():
        return []
    from loom_core.config.paths import check_regular

    check_regular(path)  # a FIFO there would block the read forever
    out = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():  # a bad byte spoils one line only
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError):
            entry = None
        if isinstance(entry, dict) and all(isinstance(entry.get(k), (str, type(None))) for k in ("task_id", "db_file")):
            out.append(entry)
        else:  # not an entry loom wrote: shown as it is, never used to find an archive
            out.append({"raw": raw})
    ids = [e.get("task_id") for e in out]
    for e in out:
        if "raw" in e:
            continue
        stem = Path(str(e.get("db_file") or "")).name.removesuffix(".db")
        e["ref"] = e.get("task_id") if ids.count(e.get("task_id")) == 1 or not stem else stem
    return out


def find_archive(project: Path, ref: str) -> Path | None:
    """The archive a ``ref`` names: an archive file's name, else the latest archive of that task id."""
    entries = [e for e in history(project) if e.get("db_file")]
    for match in (lambda e: e.get("ref") == ref, lambda e: e.get("task_id") == ref):
        for entry in reversed(entries):
            p = Path(project) / entry["db_file"]
            if match(entry) and p.exists():
                return p
    p = history_dir(Path(project)) / f"{ref}.db"
    return p if "/" not in ref and p.exists() else None


def copy_store(src: Path, dest: Path) -> None:
    shutil.copyfile(src, dest)
