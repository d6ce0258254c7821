"""The exec file (``.loom/task-exec.json``): the options a project's task was started with, so that
``proceed``, ``answer`` and ``recover`` continue it the same way."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loom_core.engine.options import RunOptions
from loom_core.errors import ConfigError
from loom_core.store import db as dbmod
from loom_core.store import loomdir


def exec_file(project: Path) -> Path:
    return dbmod.loom_dir(project) / "task-exec.json"


def save_exec(project: Path, opts: RunOptions) -> None:
    path = exec_file(project)
    loomdir.ensure(path.parent)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(opts), indent=2), encoding="utf-8")
    os.replace(tmp, path)


def load_exec(project: Path) -> RunOptions:
    """The options the project's task was started with (``.loom/task-exec.json``); defaults when there is
    none. A damaged or wrongly typed file is refused with the field and the fix, never guessed around."""
    path = exec_file(project)
    if not path.exists():
        return RunOptions()
    from loom_core.config.paths import check_regular

    check_regular(path)
    hint = f"fix or delete {path} (then name the backend with --backend)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); {hint}"[:400]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, not {type(data).__name__}; {hint}")
    opts = RunOptions(**{k: v for k, v in data.items() if k in RunOptions.__dataclass_fields__})
    try:
        opts.validate()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}; {hint}") from None
    return opts


# ---------------------------------------------------------------------------- who drives the task
# A task whose agents a host runs (Claude Code over loom's MCP server) carries ``"host": {"via": "mcp",
# "task_id": …, "since": …}`` here: supervisors leave it alone and ``loom proceed`` refuses it until a user
# takes it over. The marker names its task, so a stale one (the task archived, a new one started) is inert.
HOST_KEY = "host"
HOST_LABEL = {"mcp": "Claude Code"}


def _doc(path: Path) -> dict[str, Any] | None:
    """The file's JSON object; None when missing, not a regular file (a FIFO is never opened) or unreadable."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, encoding="utf-8") as fh:
            doc = json.loads(fh.read(1_000_000))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _write(path: Path, doc: dict[str, Any]) -> None:
    loomdir.ensure(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def mark_host(project: Path, task_id: str, since: str, opts: RunOptions | None = None, *, via: str = "mcp") -> None:
    """Record that a host drives ``task_id`` (call it under the project lock). ``opts``: a new task's options,
    written over the previous task's; every other key of the file is kept."""
    path = exec_file(project)
    doc = _doc(path) or {}
    if opts is not None:
        doc.update(asdict(opts))
    have = doc.get(HOST_KEY)
    if isinstance(have, dict) and have.get("via") == via and have.get("task_id") == task_id and opts is None:
        return  # already marked: the file is left as it is
    doc[HOST_KEY] = {"via": via, "task_id": task_id, "since": since}
    _write(path, doc)


def clear_host(project: Path) -> dict[str, Any] | None:
    """Drop the host marker (the task ended, or a user took it over); the marker it held, if any."""
    path = exec_file(project)
    doc = _doc(path)
    if doc is None or HOST_KEY not in doc:
        return None
    have = doc.pop(HOST_KEY)
    _write(path, doc)
    return have if isinstance(have, dict) else None


def host_of(project: Path, task_id: str | None) -> dict[str, Any] | None:
    """``{via, task_id, since, label}`` when a host drives ``task_id``, else None (no marker, another task's)."""
    if not task_id:
        return None
    have = (_doc(exec_file(project)) or {}).get(HOST_KEY)
    if not isinstance(have, dict) or have.get("task_id") != task_id:
        return None
    via = str(have.get("via") or "mcp")
    return {"via": via, "task_id": task_id, "since": have.get("since"), "label": HOST_LABEL.get(via, via)}
