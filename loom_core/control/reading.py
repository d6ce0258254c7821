"""``loom status``'s light way in: the same read as :meth:`LocalControl.status <loom_core.control.local.
LocalControl.status>` for a project directory, without building the whole facade (its mixins, the catalog,
the engine's clock and events), which is most of that command's start-up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def read_status(project: Path | str, *, stall_after_min: float | None = None, with_sandbox: bool = False,
                now: str | None = None) -> dict[str, Any]:
    """What ``LocalControl().status(project, ...)`` answers for a directory (outside the catalog or in it:
    either way its resolved path), read at ``now`` (default: the wall clock, as a fresh ``SystemClock``
    gives it)."""
    from loom_core.control.status import project_status
    from loom_core.kernel.now import format_dt

    path = Path(project).expanduser().resolve()
    return project_status(path, now or format_dt(datetime.now(UTC)), stall_after_min=stall_after_min,
                          with_sandbox=with_sandbox)


def read_history(project: Path | str) -> list[dict[str, Any]]:
    """What ``LocalControl().history_index(project)`` answers for a directory."""
    from loom_core.store.archive import history

    return history(Path(project).expanduser().resolve())


def read_verify(project: Path | str, task_id: str | None = None) -> tuple[Any, Path | None]:
    """``LocalControl().verify(project, task_id)`` (its errors when there is no such store) and then
    ``store_of(project, task_id)``: the report and the store it read."""
    from loom_core.engine.verify import verify
    from loom_core.store.locate import task_store, task_store_or_none

    proj = Path(project).expanduser().resolve()
    report = verify(proj, task_store(proj, task_id))  # NoActiveTask / TaskNotFound name what is missing
    return report, task_store_or_none(proj, task_id)
