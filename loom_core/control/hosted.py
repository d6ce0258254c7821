"""Who drives a task: one whose agents a host runs (Claude Code over loom's MCP server) is left alone by
supervisors and ``loom proceed`` until a user takes it over (``loom proceed --take-over``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loom_core.control.client import ProjectRef
from loom_core.errors import NoActiveTask


class HostedVerbs:
    """Mixed into :class:`~loom_core.control.local.LocalControl`."""

    def take_over(self: Any, ref: ProjectRef) -> dict[str, Any]:
        """Hand the task in progress from its host (Claude Code) to loom: its marker goes, so ``proceed`` and
        supervisors drive it again. ``{task_id, host}``: ``host`` is the marker that was dropped (None: none)."""
        from loom_core.engine.host_mark import clear_host, host_of
        from loom_core.engine.lock import ProjectLock
        from loom_core.store import db as dbmod
        from loom_core.store.read import status_facts

        path = self._path(ref)
        with ProjectLock(path):  # never while the host's tool call is inside
            facts = status_facts(dbmod.state_path(path)) if dbmod.state_path(path).exists() else None
            p = facts.state.pipeline if facts is not None else {}
            if not p.get("task_id") or p.get("status") != "in_progress":
                raise NoActiveTask(f"no task in progress in {path}")
            host = host_of(path, p["task_id"])
            if host is not None:
                clear_host(path)
        self.notify_answered()  # a supervisor of this client looking at the slot wakes at once
        return {"task_id": p["task_id"], "host": host}


def sandbox_root(*, create: bool = False) -> Path:
    """The base folder of every sandbox copy (``<tmpdir>/loom-<uid>``): a host running loom's agents (Claude
    Code's sub-agents) must be allowed to edit under it. ``create``: made now (0700, yours), as a sandbox would."""
    from loom_core.workspace.fs import base_dir_of, ensure_base

    return ensure_base(None) if create else base_dir_of(None)
