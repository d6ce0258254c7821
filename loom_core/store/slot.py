"""Evidence of the task a project's slot should hold, kept beside the store: after a kill, a deleted
``state.db-wal`` takes every commit since the last checkpoint with it (the task included). The store
alone then looks like an empty slot; this record lets loom say the task was lost instead."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from loom_core.store import db as dbmod

MARKER = "current-task.json"


def marker_path(project: Path) -> Path:
    return dbmod.loom_dir(Path(project)) / MARKER


def mark(project: Path, task_id: str) -> None:
    """Record ``task_id`` as the slot's task (after its creation committed). Best effort."""
    path = marker_path(project)
    tmp = path.with_name(f".{MARKER}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps({"task_id": task_id}), encoding="utf-8")
        # renamed onto a free name: renaming over an existing file makes ext4 flush the new one's data
        # first (auto_da_alloc), a disk wait inside every task creation; a kill between the two steps
        # leaves no marker, as a kill just before marking does
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.replace(tmp, path)


def marked(project: Path) -> str | None:
    """The task id last recorded as the slot's task, or None."""
    try:
        task_id = json.loads(marker_path(project).read_text(encoding="utf-8"))["task_id"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return task_id if isinstance(task_id, str) else None


def lost_task(project: Path, task_id: str | None = None) -> str | None:
    """A one-line explanation when the slot's store holds no task but the last task created here was
    never archived; None otherwise. Call it only once the store was read as holding no task, passing the
    ``marked`` id read *before* that read (a task created and marked meanwhile is then never "lost")."""
    from loom_core.store.archive import history

    task_id = task_id if task_id is not None else marked(project)
    if task_id is None or any(e.get("task_id") == task_id for e in history(Path(project))):
        return None
    return (f"the state of task {task_id} was lost: .loom/state.db holds no task although it was never archived "
            "(state.db-wal deleted after a kill?); it cannot be resumed — any sandbox still holds the agents' "
            "work; 'loom run' starts a new task")
