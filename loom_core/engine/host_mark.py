"""Who drives a project's task, kept in its exec file (``.loom/task-exec.json``) beside the options it was
started with. Light on purpose (``loom status`` reads it): no settings, no ORM."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loom_core.store import db as dbmod
from loom_core.store import loomdir


def _exec_path(project: Path) -> Path:
    return dbmod.loom_dir(project) / "task-exec.json"  # engine/exec_file.py's file


# ---------------------------------------------------------------------------- who drives the task
# A task whose agents a host runs (Claude Code over loom's MCP server) carries ``"host": {"via": "mcp",
# "task_id": …, "since": …}`` here: supervisors leave it alone and ``loom proceed`` refuses it until a user
# takes it over. The marker names its task, so a stale one (the task archived, a new one started) is inert.
HOST_KEY = "host"
HOST_LABEL = {"mcp": "Claude Code"}


def _write(path: Path, doc: dict[str, Any]) -> None:
    loomdir.ensure(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def mark_host(project: Path, task_id: str, since: str, opts: Any = None, *, via: str = "mcp") -> None:
    """Record that a host drives ``task_id`` (call it under the project lock). ``opts``: a new task's options,
    written over the previous task's; every other key of the file is kept."""
    path = _exec_path(project)
    doc = loomdir.read_json_object(path) or {}
    if opts is not None:
        doc.update(asdict(opts))
    have = doc.get(HOST_KEY)
    if isinstance(have, dict) and have.get("via") == via and have.get("task_id") == task_id and opts is None:
        return  # already marked: the file is left as it is
    doc[HOST_KEY] = {"via": via, "task_id": task_id, "since": since}
    _write(path, doc)


def clear_host(project: Path) -> dict[str, Any] | None:
    """Drop the host marker (the task ended, or a user took it over); the marker it held, if any."""
    path = _exec_path(project)
    doc = loomdir.read_json_object(path)
    if doc is None or HOST_KEY not in doc:
        return None
    have = doc.pop(HOST_KEY)
    _write(path, doc)
    return have if isinstance(have, dict) else None


def host_of(project: Path, task_id: str | None) -> dict[str, Any] | None:
    """``{via, task_id, since, label}`` when a host drives ``task_id``, else None (no marker, another task's)."""
    if not task_id:
        return None
    have = (loomdir.read_json_object(_exec_path(project)) or {}).get(HOST_KEY)
    if not isinstance(have, dict) or have.get("task_id") != task_id:
        return None
    via = str(have.get("via") or "mcp")
    return {"via": via, "task_id": task_id, "since": have.get("since"), "label": HOST_LABEL.get(via, via)}
