"""Task lifecycle on disk: rotation of a finished store into ``.loom/history/``, reset, and
reading the history index.

An archive is the finished store compacted and compressed (``codec.pack_image``: an xz stream of the
SQLite image, a few times smaller than the file), written beside its final name, fsynced, renamed into
place and its directory fsynced — two syncs — before the live store is removed: a kill at any point
leaves the live store, a complete archive, or both. Reads open it through ``store.read.opener``; an
archive an older loom wrote (a plain SQLite file) reads the same way."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import sqlite3
import stat
import zlib
from pathlib import Path
from typing import Any

from loom_core.crash import crashpoint
from loom_core.errors import KernelRefusal, LoomError, StateError
from loom_core.store import codec, loomdir, read
from loom_core.store import db as dbmod
from loom_core.store.read import TASK_FIELDS
from loom_core.store.read.opener import read_image

SIDE_FILES = dbmod.SIDE_FILES


def history_dir(project: Path) -> Path:
    return dbmod.loom_dir(project) / "history"


def index_path(project: Path) -> Path:
    return history_dir(project) / "index.jsonl"


def _image(live: Path) -> bytes:
    """The live store compacted in memory, transcripts as plain text (the image compresses them better
    than each value alone), as one compressed image (``codec.pack_image``). Nothing touches the disk."""
    src = sqlite3.connect(f"file:{live}?mode=ro", uri=True)
    mem = sqlite3.connect(":memory:")
    try:
        src.backup(mem)
        mem.create_function("loom_unpack", 1, codec.unpack, deterministic=True)
        if mem.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'transcripts'").fetchone():
            mem.execute("UPDATE transcripts SET prompt = loom_unpack(prompt), output = loom_unpack(output) "
                        "WHERE typeof(prompt) = 'blob' OR typeof(output) = 'blob'")
            mem.commit()
        mem.execute("VACUUM")  # no free pages; an in-memory database is written in rollback-journal mode
        data = mem.serialize()
    except (sqlite3.Error, zlib.error) as exc:
        raise StateError(f"could not copy {live} into the history: {exc}; the live store was kept",
                         code="ARCHIVE_COPY_FAILED") from exc
    finally:
        mem.close()
        src.close()
    return codec.pack_image(data)


def _archived_task(blob: bytes, name: Path) -> dict[str, Any] | None:
    """The task row an archive image holds, read back from the compressed bytes themselves."""
    try:
        return read_image(codec.unpack_image(blob), name, lambda conn: _task_row(conn.execute(
            f"SELECT {', '.join(TASK_FIELDS)} FROM pipeline_state WHERE id = 1").fetchone()))
    except (ValueError, LoomError):
        return None


def _write_durably(path: Path, blob: bytes, mode: int) -> None:
    """``blob`` into a new file at ``path``, fsynced once before it is closed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _sweep(hist: Path) -> None:
    """Remove what an archive killed before its rename left (``*.db.tmp``, and the side files an older
    loom's copy could leave): the caller holds the project lock, so none of it is being written."""
    for leftover in hist.glob("*.db.tmp*"):
        leftover.unlink(missing_ok=True)


def _task_row(row: Any) -> dict[str, Any] | None:
    return None if row is None else dict(zip(TASK_FIELDS, tuple(row), strict=True))


def _read_task(path: Path) -> dict[str, Any] | None:
    return _task_row(dbmod.read_snapshot(path, lambda conn: conn.execute(
        f"SELECT {', '.join(TASK_FIELDS)} FROM pipeline_state WHERE id = 1").fetchone()))


def _write(hist: Path, live: Path, task_id: str) -> Path:
    """The live store's archive written under a free name in ``hist`` (temp, fsync, rename, directory
    fsync); its path."""
    dest = hist / f"{task_id}.db"
    n = 1
    while dest.exists():
        n += 1
        dest = hist / f"{task_id}.{n}.db"
    _sweep(hist)
    tmp = dest.with_suffix(".db.tmp")
    blob = _image(live)
    copied = _archived_task(blob, dest)
    if not copied or copied["task_id"] != task_id:
        raise StateError(f"archive of {task_id} did not verify; the live store was kept",
                         code="ARCHIVE_VERIFY_FAILED")
    crashpoint("archive-packed")
    _write_durably(tmp, blob, stat.S_IMODE(live.stat().st_mode))
    crashpoint("archive-written")
    os.replace(tmp, dest)
    dbmod.fsync_dir(hist)  # the archive's name is durable before the live store goes
    crashpoint("archive-renamed")
    return dest


def _archived_before(project: Path, hist: Path, live: Path, task_id: str) -> tuple[Path, bool] | None:
    """The archive of this very store (same task, same audit head) that an archive killed before it removed
    the live store left, and whether the index lists it; None when there is none (the usual case)."""
    names = [p for p in hist.glob(f"{glob.escape(task_id)}*.db")
             if p.name == f"{task_id}.db" or p.name[len(task_id)] == "." and p.name[len(task_id) + 1:-3].isdigit()]
    if not names:
        return None
    head = read.head(live)
    indexed = {Path(str(e["db_file"])).name for e in history(project) if e.get("db_file")}
    for path in sorted(names):
        try:
            if read.task_id(path) == task_id and read.head(path) == head:
                return path, path.name in indexed
        except LoomError:
            continue  # not readable: never taken for the archive
    return None


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
    prior = _archived_before(project, hist, live, info["task_id"])
    dest, indexed = prior if prior else (_write(hist, live, info["task_id"]), False)
    if not indexed:
        line = {**info, "db_file": str(dest.relative_to(project)), "archived_at": now,
                "reason": "discarded" if force and info["status"] == "in_progress" else reason}
        with index_path(project).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
    crashpoint("archive-indexed")
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
