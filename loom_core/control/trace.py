"""The trace verb (spec §5.4 "Trace"): a task's summary, agent runs, findings, verdicts, gates and token
totals, for the live task or an archived one. :class:`TraceVerbs` is mixed into
:class:`~loom_core.control.local.LocalControl` (it uses its ``store_of``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from loom_core.errors import LoomError

if TYPE_CHECKING:
    from loom_core.control.client import ProjectRef


def bad_task_id(task_id: str) -> bool:
    """A task id that could name a path instead of an archive (``/``, ``\\``, a leading dot, a NUL)."""
    return not task_id or any(c in task_id for c in "/\\\x00") or task_id.startswith(".")


class TraceVerbs:
    def trace(self, ref: ProjectRef, task_id: str | None = None) -> dict[str, Any]:
        """``{archived, summary, agents, findings, verdicts, gates, token_totals}`` of the live task, or of the
        archived ``task_id`` (read-only, never migrated). A malformed id → ``BAD_TASK_ID``; an unknown one →
        ``ARCHIVE_NOT_FOUND``; no live task → ``NO_ACTIVE_TASK``."""
        from loom_core.store import db as dbmod
        from loom_core.store.read.trace import trace

        if task_id is not None and bad_task_id(task_id):
            raise LoomError(f"not a task id: {task_id!r}", code="BAD_TASK_ID")
        project = self.project(ref).path  # type: ignore[attr-defined]
        path = self.store_of(ref, task_id)  # type: ignore[attr-defined]
        got = None if path is None else trace(path)
        if got is None:
            if task_id:
                raise LoomError(f"no archived task {task_id} in {project}", code="ARCHIVE_NOT_FOUND")
            raise LoomError(f"no task in {project}", code="NO_ACTIVE_TASK")
        live = dbmod.state_path(project)
        return {"archived": not (live.exists() and path.resolve() == live.resolve()),
                "summary": asdict(got.summary), "agents": [asdict(a) for a in got.agents],
                "findings": [asdict(f) for f in got.findings], "verdicts": [asdict(v) for v in got.verdicts],
                "gates": [asdict(g) for g in got.gates], "token_totals": got.token_totals}
