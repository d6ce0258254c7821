"""Where a spawn is executed: one agent run inside the task sandbox (:class:`SpawnExecutor`).

Routes each intent: a bundle-declared capability (``checks``) goes to its deterministic
executor, everything else to the chosen backend. Every spawn runs in the task's workspace;
afterwards the sandbox's own diff gives the file lists (so change-conditional reviewers see
what really changed) and ``.loom/work/diff.txt`` is refreshed. A file-editing agent that left
no change in an isolated sandbox is an ``EXECUTOR_EMPTY_DIFF`` failure, not a silent pass.

On every backend, an agent that judges (bundle extra ``judges``) gets the work under review in its
prompt (the context doc, the plan, or the diff; see :mod:`.agent_view`), and the answer of an agent
that describes (extra ``writes_doc``) is saved as its document when the spawn did not write it.

Roles: only agents with the extra ``edits_files`` may change the sandbox. Every other spawn runs
between two tree snapshots (:class:`.checks.treesnap.TreeSnapshot`; ``.loom/`` and ignored files
are outside it): whatever it changed is reverted and delivered as a blocking ``role-violation``
finding naming the agent and the files (origin ``harness``: a person decides). Editing spawns hold
the tree alone (a readers-writer lock), so a change seen around a read-only spawn is never an
editor's work.

Crash safety of file effects: before a file-editing spawn starts, the tree is written to the
sandbox's object database and its id recorded in ``.loom/work/spawns/<agent_run_id>.json``. A spawn
whose result was never delivered runs again under the same id after a crash; it first restores the
tree it started from, so a half-written file or an undelivered fix never leaks into the re-run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from loom_core.agents import agent_view
from loom_core.agents.executors import ExecResult, Executor
from loom_core.errors import ExecutorError
from loom_core.kernel.types import Intent
from loom_core.workspace import children
from loom_core.workspace.checks.treesnap import TreeSnapshot

SPAWNS = Path(".loom") / "work" / "spawns"


class _TreeLock:
    """Readers-writer lock over the sandbox tree: read-only spawns share it, editing spawns hold it alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._readers)
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class SpawnExecutor:
    idempotent = True

    def __init__(self, backend: Executor, workspace, *, checks: Executor | None = None) -> None:
        self.backend = backend
        self.workspace = workspace
        self.checks = checks
        self.name = backend.name
        self.label = backend.label
        self._lock = threading.Lock()  # spawns of a fan-out share one tree: diff them one at a time
        self._tree = _TreeLock()
        self._active: dict[str, str] = {}       # read-only spawns running now: agent_run_id -> agent
        self._beside: dict[str, set[str]] = {}  # agent_run_id -> read-only agents that ran beside it
        # children of a killed earlier run of this project (the caller holds the project lock)
        try:
            self.reaped = children.reap(getattr(workspace, "project", None) or workspace.root)
        except OSError:
            self.reaped = []

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        ws = self.workspace
        if self.reaped:
            pids, self.reaped = self.reaped, []
            log(f"stopped {len(pids)} process(es) a killed earlier run left behind (pids {', '.join(map(str, pids))})")
        intent = replace(intent, extras={**intent.extras, "workdir": str(ws.root)})
        capability = intent.extras.get("capability")
        if capability == "checks":
            if self.checks is None:
                raise ExecutorError("no checks runner is configured", code="NO_BACKEND_RESOLVED")
            with self._tree.shared():  # the checks revert whatever they change themselves
                result = self.checks.execute(intent, cancel, log)
                result.output = _with_tree(result.output, ws.root)
                return result
        if intent.extras.get("edits_files"):
            with self._tree.exclusive():
                start = self._start_from_snapshot(intent, log)
                try:
                    return self._spawn(intent, cancel, log, edits=True)
                except BaseException:
                    # a failed attempt leaves nothing half-done: its retry (and any sibling) starts clean
                    if start is not None:
                        with contextlib.suppress(Exception):
                            undone, _ = start.revert()
                            if undone:
                                log(f"undid the {len(undone)} file change(s) of the failed attempt")
                    raise
                finally:
                    if start is not None:
                        start.close()
        with self._tree.shared(), self._watching(intent) as beside:
            return self._read_only(intent, cancel, log, beside)

    @contextlib.contextmanager
    def _watching(self, intent: Intent) -> Iterator[set[str]]:
        """Track the read-only spawns running at once: a change seen around one of them may be a sibling's."""
        with self._lock:
            beside = {a for a in self._active.values() if a != intent.agent}
            for rid in self._active:
                self._beside[rid].add(intent.agent)
            self._active[intent.agent_run_id] = intent.agent
            self._beside[intent.agent_run_id] = beside
        try:
            yield beside
        finally:
            with self._lock:
                self._active.pop(intent.agent_run_id, None)
                self._beside.pop(intent.agent_run_id, None)

    # ------------------------------------------------------------------ roles
    def _read_only(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None],
                   beside: set[str]) -> ExecResult:
        try:
            snap = TreeSnapshot.take(self.workspace.root)
        except Exception as exc:  # pygit2 / filesystem trouble: the CLI's own restrictions still hold
            log(f"could not snapshot the sandbox before {intent.agent} ({exc}); its changes are not checked")
            return self._spawn(intent, cancel, log, edits=False)
        try:
            try:
                result = self._spawn(intent, cancel, log, edits=False)
            finally:  # a failed read-only spawn leaves no edit behind either
                changed, failed = self._revert(snap, intent, log)
        finally:
            snap.close()
        result.files_modified, result.files_created = (), ()
        if changed:
            with self._lock:
                modified, created = self.workspace.delta()
                if self.workspace.isolated:
                    with contextlib.suppress(Exception):
                        agent_view.refresh_diff(self.workspace)
            result.files_modified, result.files_created = tuple(modified), tuple(created)
            result.findings = list(result.findings) + [violation(intent.agent, changed, failed, sorted(beside))]
        return result

    def _revert(self, snap: TreeSnapshot, intent: Intent, log: Callable[[str], None]) -> tuple[list[str], list[str]]:
        try:
            changed, failed = snap.revert()
        except Exception as exc:
            log(f"could not check what {intent.agent} changed in the sandbox: {exc}")
            return [], []
        if changed:
            log(f"{intent.agent} may not change files; reverted: {', '.join(changed[:8])}"
                + (f" (could not restore: {', '.join(failed[:8])})" if failed else ""))
        return changed, failed

    # ------------------------------------------------------------------ crash safety
    def _marker(self, intent: Intent) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in intent.agent_run_id)
        return self.workspace.root / SPAWNS / f"{safe}.json"

    def _start_from_snapshot(self, intent: Intent, log: Callable[[str], None]) -> TreeSnapshot | None:
        """The tree this editing spawn starts from: a re-run (its record exists) first gets back the tree
        the first attempt started from; a new one records the tree now. None when there is no snapshot."""
        path = self._marker(intent)
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rec = None
        root = self.workspace.root
        if isinstance(rec, dict) and isinstance(rec.get("tree"), str):
            snap = TreeSnapshot(root, str(rec.get("id") or ""), "git", tree=rec["tree"],
                                prefix=str(rec.get("prefix") or ""))
            try:
                changed, failed = snap.revert()
            except Exception as exc:
                log(f"could not restore the sandbox {intent.agent} started from: {exc}")
                return None
            if changed:
                log(f"{intent.agent} runs again: restored the {len(changed)} file(s) an undelivered earlier "
                    f"attempt changed ({', '.join(changed[:6])})" + (f"; could not restore {failed}" if failed else ""))
            return snap
        try:
            snap = TreeSnapshot.take(root)
        except Exception as exc:
            log(f"could not snapshot the sandbox before {intent.agent}: {exc}")
            return None
        if snap.kind != "git" or snap.tree is None:
            return snap  # outside git there is no object store to keep the tree in past this process
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"agent": intent.agent, "tree": snap.tree, "id": snap.id, "prefix": snap.prefix}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log(f"could not record the sandbox state before {intent.agent}: {exc}")
        return snap

    def delivered(self, agent_run_ids) -> None:
        """The driver delivered these results: their start snapshots are no longer needed."""
        for rid in agent_run_ids:
            with contextlib.suppress(OSError):
                self._marker(Intent("", rid, "", "", "")).unlink()

    # ------------------------------------------------------------------ the spawn
    def _spawn(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None], *, edits: bool) -> ExecResult:
        ws = self.workspace
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


def _with_tree(envelope: str, root: Path) -> str:
    """The checks envelope with ``tree``: the id of the sandbox tree the checks ran on (they put back
    whatever they changed). loom's checks executor names it itself (from the snapshot it already
    took); for any other checks executor it is taken here."""
    try:
        data = json.loads(envelope)
        if isinstance(data, dict) and "tree" not in data:
            data["tree"] = TreeSnapshot.take(root).id
            return json.dumps(data)
    except Exception:  # not JSON, or no snapshot: the envelope stands as it is
        pass
    return envelope


def violation(agent: str, changed: list[str], failed: list[str], beside: list[str] = ()) -> dict:
    """The blocking finding for a read-only agent that changed the sandbox (``beside``: read-only agents
    that ran at the same time, any of which may have made the change)."""
    files = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
    undone = (f"; could NOT restore {', '.join(failed[:8])} — do not accept without checking them" if failed
              else "; the changes were reverted")
    who = (f"the sandbox changed while {agent} ran beside {', '.join(beside[:6])} (read-only agents; any of "
           f"them may have made it): {len(changed)} file(s)" if beside
           else f"{agent} may not change files but changed {len(changed)}")
    return {"severity": "blocking", "category": "role-violation", "file": changed[0] if changed else None,
            "summary": f"{who}: {files}{undone}"[:500],
            "evidence_excerpt": "\n".join(changed)[:400],
            "suggested_fix": "a read-only agent's edits never reach the branch; check the agent's setup"}


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
