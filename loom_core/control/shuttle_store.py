"""The store-facing halves of the host verbs: state views, extensions, backup and restore (spec §8.2).

Reads never create a store (a project without one answers with empty values); backup and restore work
under the project lock.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loom_core.errors import LoomError
from loom_core.store import db as dbmod

FORMATS = ("summary", "json", "jsonl", "pretty-table")
MAX_LIMIT = 1000


def state_view(project: Path, *, format: str = "summary", table: str | None = None, since: str | None = None,
               limit: int = 100) -> dict[str, Any]:
    from loom_core.store.read import tables

    if format not in FORMATS:
        raise LoomError(f"format must be one of {', '.join(FORMATS)}", code="BAD_INPUT")
    path = dbmod.state_path(project)
    if format == "summary":
        return {"format": format, **_summary(path), **tables.counts(path)}
    if format == "json":
        return {"format": format, "state": _full(path)}
    known = (*tables.TABLES, *tables.EXTRA)
    name = table if table in known else "audit"
    limit = max(1, min(int(limit or 100), MAX_LIMIT))
    cols, rows = tables.table_rows(path, name, since=since, limit=limit)
    text = ("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows) if format == "jsonl"
            else pretty_table(name, cols, rows))
    out = {"format": format, "table": name, "row_count": len(rows), "text": text}
    if table is not None and table != name:
        out["note"] = f"table '{table}' is not readable here; showing audit (readable: {', '.join(known)})"
    return out


def _summary(path: Path) -> dict[str, Any]:
    from loom_core.store.read import tables

    rows = tables.table_rows(path, "pipeline_state", limit=1)[1] if path.exists() else []
    p = rows[0] if rows else {}
    return {"task_id": p.get("task_id"), "status": p.get("status"), "verdict": p.get("verdict"),
            "work_result": p.get("work_result"), "owner_id": None}


def _full(path: Path) -> dict[str, Any] | None:
    from loom_core.store.state import open_existing

    if not path.exists():
        return None
    store = open_existing(path)
    try:
        st = store.state()
    finally:
        store.close(checkpoint=False)
    if not st.exists:
        return None
    out = asdict(st)
    out["ledger_keys"] = sorted(st.ledger_keys)
    return out


def pretty_table(name: str, cols: list[str], rows: list[dict[str, Any]], width: int = 40) -> str:
    """Stable column widths: each column as wide as its longest cell (cut at ``width``)."""
    if not cols:
        return f"{name}: (no rows)\n"

    def cell(v: Any) -> str:
        s = "" if v is None else str(v).replace("\n", " ")
        return s if len(s) <= width else s[:width - 1] + "…"

    cells = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    line = lambda vals: " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    out = [line(cols), "-+-".join("-" * w for w in widths)] + [line(r) for r in cells]
    return "\n".join(out) + "\n"


def extensions(project: Path, *, kind: str | None = None, status: str | None = None,
               include_manifest: bool = False) -> dict[str, Any]:
    """loom's extensions are its workflow bundles: the one the task uses is ``installed``, others ``available``."""
    from loom_core import __version__
    from loom_core.bundles import available, load_bundle

    summary = _summary(dbmod.state_path(project))
    current = None
    if summary["task_id"]:
        from loom_core.store.read import tables

        row = tables.table_rows(dbmod.state_path(project), "pipeline_state", limit=1)[1]
        current = row[0].get("bundle") if row else None
        started = row[0].get("started_at") if row else None
    out = []
    for name in sorted(available()):
        ext: dict[str, Any] = {"id": f"bundle:{name}", "kind": "bundle", "name": name, "publisher": "loom",
                               "version": __version__, "status": "installed" if name == current else "available",
                               "installed_at": started if name == current else None, "updated_at": None}
        if include_manifest:
            try:
                b = load_bundle(name)
                ext["manifest"] = {"agents": sorted(b.agents), "phases": list(b.phases)}
            except LoomError as exc:
                ext["status"], ext["failure_reason"] = "failed", str(exc)
        if (kind is None or kind == ext["kind"]) and (status is None or status == ext["status"]):
            out.append(ext)
    return {"extensions": out}


def inside(project: Path, rel: str, code: str) -> Path:
    """``rel`` resolved inside the project (no escape by ``..`` or a link), else ``code``."""
    if not rel or os.path.isabs(rel):
        raise LoomError(f"give a path relative to the project, got {rel!r}", code=code)
    target = (project / rel).resolve()
    if target == project or project not in target.parents:
        raise LoomError(f"{rel} leaves the project directory", code=code)
    return target


def backup(project: Path, to: str, now: str) -> dict[str, Any]:
    from loom_core.engine.lock import ProjectLock
    from loom_core.store.backup import dump

    dest = inside(project, to, "BACKUP_PATH_REJECTED")
    if dest == dbmod.state_path(project) or dest.parent == dbmod.loom_dir(project) and dest.name.startswith("state."):
        raise LoomError("a backup may not overwrite the live store", code="BACKUP_PATH_REJECTED")
    with ProjectLock(project):
        n = dump(dbmod.state_path(project), dest)
    return {"bytes_written": n, "ts": now, "backup_path": str(dest)}


def restore(project: Path, source: str, fmt: str, confirm: bool, now: str) -> dict[str, Any]:
    from loom_core.engine.lock import ProjectLock
    from loom_core.store import backup as bk

    if not confirm:
        return {"restored": False, "ts": now, "error": {"code": "CONFIRM_REQUIRED", "message": "a restore replaces "
                "the project's task store: call again with confirm: true"}}
    if fmt not in ("sql", "binary"):
        raise LoomError("format must be sql or binary", code="BAD_INPUT")
    src = inside(project, source, "RESTORE_REJECTED")
    if not src.is_file():
        raise LoomError(f"{source} is not a file", code="RESTORE_REJECTED")
    with ProjectLock(project):
        (bk.restore_sql if fmt == "sql" else bk.restore_binary)(dbmod.state_path(project), src)
    return {"restored": True, "ts": now}
