"""Per-spawn dispatch inside the task sandbox.

Routes each intent: a bundle-declared capability (``checks``) goes to its deterministic
executor, everything else to the chosen backend. Every spawn runs in the task's workspace;
afterwards the sandbox's own diff gives the file lists (so change-conditional reviewers see
what really changed) and ``.loom/work/diff.txt`` is refreshed. A file-editing agent that left
no change in an isolated sandbox is an ``EXECUTOR_EMPTY_DIFF`` failure, not a silent pass.

On every backend, an agent that judges (bundle extra ``judges``) gets the work under review in its
prompt (the context doc, the plan, or the diff; see :mod:`.agent_view`), and the answer of an agent
that describes (extra ``writes_doc``) is saved as its document when the spawn did not write it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import replace

from ..errors import ExecutorError
from ..kernel.types import Intent
from . import agent_view
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
        doc = intent.extras.get("writes_doc")
        doc_before = agent_view.doc_digest(ws.root, doc) if doc else None
        if intent.extras.get("judges"):
            with self._lock:
                section = agent_view.review_section(ws, intent.phase)
            intent = replace(intent, prompt=intent.prompt.rstrip("\n") + section)
        result = self.backend.execute(intent, cancel, log)
        if intent.extras.get("judges"):
            result.prompt = intent.prompt  # the transcript shows what the judge saw, review section included
        with self._lock:
            if doc and agent_view.doc_digest(ws.root, doc) == doc_before:
                try:
                    if agent_view.save_document(ws.root, doc, result.output):
                        log(f"saved the answer as .loom/work/{doc}")
                except OSError as exc:
                    log(f"could not save .loom/work/{doc}: {exc}")
            modified, created = ws.delta()
            if ws.isolated:
                try:
                    agent_view.refresh_diff(ws)
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
