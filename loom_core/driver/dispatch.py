"""Per-spawn dispatch inside the task sandbox.

Routes each intent: a bundle-declared capability (``checks``) goes to its deterministic
executor, everything else to the chosen backend. Every spawn runs in the task's workspace;
afterwards the sandbox's own diff gives the file lists (so change-conditional reviewers see
what really changed) and ``.loom/work/diff.txt`` is refreshed. A file-editing agent that left
no change in an isolated sandbox is an ``EXECUTOR_EMPTY_DIFF`` failure, not a silent pass.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import replace

from ..errors import ExecutorError
from ..kernel.types import Intent
from .executors import ExecResult, Executor


class TaskExecutor:
    idempotent = True

    def __init__(self, backend: Executor, workspace, *, checks: Executor | None = None) -> None:
        self.backend = backend
        self.workspace = workspace
        self.checks = checks
        self.name = backend.name
        self.label = backend.label
        self._lock = threading.Lock()  # spawns of a fan-out share one tree: diff them one at a time

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        ws = self.workspace
        intent = replace(intent, extras={**intent.extras, "workdir": str(ws.root)})
        capability = intent.extras.get("capability")
        if capability == "checks":
            if self.checks is None:
                raise ExecutorError("no checks runner is configured", code="NO_BACKEND_RESOLVED")
            return self.checks.execute(intent, cancel, log)
        edits = bool(intent.extras.get("edits_files"))
        before = _fingerprint(ws.root, *ws.delta()) if edits else None
        result = self.backend.execute(intent, cancel, log)
        with self._lock:
            modified, created = ws.delta()
            if ws.isolated:
                try:
                    ws.diff_text()
                except Exception as exc:  # the diff file is a convenience; never fail the spawn for it
                    log(f"could not write diff.txt: {exc}")
        if edits and ws.isolated and before == _fingerprint(ws.root, modified, created) and not result.files_modified \
                and not result.files_created and intent.agent.startswith("implementer"):
            raise ExecutorError(f"{intent.agent} finished without changing any file in the sandbox",
                                code="EXECUTOR_EMPTY_DIFF")
        result.files_modified = tuple(dict.fromkeys(tuple(result.files_modified) + tuple(modified)))
        result.files_created = tuple(dict.fromkeys(tuple(result.files_created) + tuple(created)))
        return result


def _fingerprint(root, modified: list[str], created: list[str]) -> str:
    """Content hash of the changed files (an edit to an already-changed file still counts)."""
    h = hashlib.sha256()
    for rel in sorted(set(modified) | set(created)):
        h.update(rel.encode())
        try:
            h.update(hashlib.sha256((root / rel).read_bytes()).digest())
        except OSError:
            h.update(b"<missing>")
    return h.hexdigest()
