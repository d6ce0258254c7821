"""Where a task's store lives: the one rule every surface uses to turn (project, task) into a file."""

from __future__ import annotations

from pathlib import Path

from loom_core.errors import LoomError, NoActiveTask
from loom_core.store import db as dbmod
from loom_core.store import read
from loom_core.store.archive import find_archive


class TaskNotFound(LoomError):
    """The project has no store for the task named (neither archived nor live)."""

    code = "TASK_NOT_FOUND"


def task_store(project: Path, task_id: str | None = None) -> Path:
    """The store of ``task_id`` in ``project``: the live store when ``task_id`` is None, else the
    archive that ``task_id`` names (a history ref or task id), else the live store when it holds that
    task. ``NoActiveTask`` when no live store exists for None; ``TaskNotFound`` for an unknown task.
    A live path that is a directory, FIFO or dangling link is a typed ``StateError``."""
    project = Path(project)
    live = dbmod.state_path(project)
    dbmod.check_kind(live)
    if task_id is None:
        if not live.exists():
            raise NoActiveTask(f"no active task in {project} (name an archived one with --task)")
        return live
    found = find_archive(project, task_id)
    if found is not None:
        return found
    if read.task_id(live) == task_id:
        return live
    raise TaskNotFound(f"no task '{task_id}' in {project} (see 'loom history')")


def task_store_or_none(project: Path, task_id: str | None = None) -> Path | None:
    """:func:`task_store`, or None when the project has no such store (no task, or no archive of that id)."""
    try:
        return task_store(Path(project), task_id or None)
    except (NoActiveTask, TaskNotFound):
        return None
