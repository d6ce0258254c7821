"""Verbs a surface on this machine needs beside the task verbs: make a project's ``.loom``, read the
history index as recorded, collect orphan sandboxes, ask before a first task runs in place, and load a
user's extra rules for ``replay``.

:class:`HousekeepingVerbs` is mixed into :class:`~loom_core.control.local.LocalControl` (it uses its
``_path`` and ``clock``). Heavy modules are imported inside the verbs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from loom_core.errors import ConfigError


class HousekeepingVerbs:
    def init(self, ref: Any) -> Path:
        """Create the project's ``.loom`` (with its ``.gitignore``); returns it."""
        from loom_core.store.loomdir import ensure_for

        d = ensure_for(self._path(ref))  # type: ignore[attr-defined]
        if not (d / ".gitignore").exists():
            (d / ".gitignore").write_text("*\n", encoding="utf-8")
        return d

    def history_index(self, ref: Any) -> list[dict[str, Any]]:
        """The history index as recorded, oldest first; a damaged line comes back as ``{"raw": line}``."""
        from loom_core.store.archive import history

        return history(self._path(ref))  # type: ignore[attr-defined]

    def in_place_question(self, ref: Any, *, any_task: bool = False) -> str | None:
        """The warning to confirm before a first task runs in a directory that is not a git repository
        (agents would edit it directly); None for a repository or a project that already has a task
        (with ``any_task``, for a repository only: every new task there needs the consent)."""
        from loom_core.engine.runner import in_place_warning
        from loom_core.store import db as dbmod
        from loom_core.workspace import discover

        proj = self._path(ref)  # type: ignore[attr-defined]
        if not proj.is_dir() or discover(proj) is not None or (not any_task and dbmod.state_path(proj).exists()):
            return None
        return in_place_warning(proj)

    def gc(self, *, dry_run: bool = False) -> list[tuple[Path, int]]:
        """Remove orphan sandboxes (their project is gone or has no task in progress; a finished, accepted
        task whose branch is not there yet keeps its sandbox) and leftovers of interrupted provisioning.
        Returns (path, bytes) of each one removed, or that would be with ``dry_run``."""
        from loom_core.control.status import project_status
        from loom_core.workspace import gc as sandbox_gc

        now = self.clock.now()  # type: ignore[attr-defined]

        def keep(project: Path) -> bool:
            try:
                st = project_status(project, now)
            except Exception:  # an unreadable store: keep the work rather than guess
                return True
            if st.get("state") == "in_progress" or st.get("status") == "lost":
                return True
            if st.get("state") and st.get("verdict") == "accepted" and st.get("task_id"):
                import pygit2

                try:
                    return pygit2.Repository(str(project)).references.get(f"refs/heads/loom/{st['task_id']}") is None
                except pygit2.GitError:
                    return True
            return False

        return sandbox_gc(keep=keep, dry_run=dry_run)


def load_invariants(ref: str, search: Path | None = None) -> list[Any]:
    """The Invariant (or list of them) that ``module:attr`` names, imported with ``search`` (default: the
    current directory) first on the path. Every failure is a usage error naming ``--invariants``."""
    from loom_core.bundles import load_ref
    from loom_core.kernel.types import Invariant

    sys.path.insert(0, str(search or Path.cwd()))
    try:
        obj = load_ref(ref)
    except ConfigError as exc:
        raise ConfigError(f"--invariants: {exc}", code="USAGE") from None
    except Exception as exc:  # the user's module failed while importing
        raise ConfigError(f"--invariants: importing {ref.partition(':')[0]} failed: {type(exc).__name__}: {exc}",
                          code="USAGE") from None
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    for it in items:
        if not isinstance(it, Invariant):
            raise ConfigError(f"--invariants: {ref} must be an Invariant or a list of Invariants", code="USAGE")
    return list(items)
