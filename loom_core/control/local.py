"""The in-process :class:`~loom_core.control.client.ControlClient`: every verb runs here, in this process.

No Textual here. Task verbs block (they drive the engine); the console calls them from thread
workers. A per-project cancel token stops this client's drive between steps (and stops the running
agent); the per-project file lock keeps a second driver (another console, a ``loom run``) out.
Heavy modules are imported inside the verbs, so a surface that only reads starts fast.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loom_core.control.catalog import Catalog, Project
from loom_core.control.client import ProjectRef
from loom_core.control.completion import CompletionVerbs
from loom_core.control.config import ConfigVerbs
from loom_core.control.containers import ContainerVerbs
from loom_core.control.hosted import HostedVerbs
from loom_core.control.housekeeping import HousekeepingVerbs
from loom_core.control.plane_verbs import PlaneVerbs
from loom_core.control.shuttle import ShuttleVerbs
from loom_core.control.supervision import SupervisionVerbs
from loom_core.control.trace import TraceVerbs
from loom_core.engine.clock import Clock, SystemClock
from loom_core.engine.events import EventSink, NullSink
from loom_core.errors import LoomError

if TYPE_CHECKING:
    from loom_core.engine.runner import RunOptions, RunResult, TaskRunner

STOP_WAIT_S = 120.0  # how long cancel waits for this client's drive to stop before saying so


class LocalControl(CompletionVerbs, ConfigVerbs, ContainerVerbs, HostedVerbs, HousekeepingVerbs, PlaneVerbs,
                   ShuttleVerbs, SupervisionVerbs, TraceVerbs):
    def __init__(self, catalog: Catalog | None = None, *, sink_for: Callable[[str], EventSink] | None = None,
                 clock: Clock | None = None, demo_delay_s: float = 0.0,
                 new_id: Callable[[], str] | None = None, spawn_gate: Any = None) -> None:
        self._catalog = catalog
        self.spawn_gate = spawn_gate  # wraps every spawn of every project this client drives (the plane's permits)
        self.sink_for = sink_for or (lambda _pid: NullSink())
        self.clock = clock or SystemClock()
        self.new_id = new_id  # the engine's id source (None: random); fixed for reproducible pictures
        self.demo_delay_s = demo_delay_s
        self._cancel: dict[str, threading.Event] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Condition(self._lock)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog.load()
        return self._catalog

    # ------------------------------------------------------------------ projects
    def projects(self) -> list[Project]:
        return list(self.catalog.projects)

    def project(self, ref: ProjectRef) -> Project:
        """A catalog id, or a directory (in the catalog or not: the CLI works on any project)."""
        if isinstance(ref, Path) or os.sep in str(ref) or str(ref) in (".", ".."):
            path = Path(ref).expanduser().resolve()
            for p in self.catalog.projects if self._catalog is not None else ():
                if Path(p.dir) == path:
                    return p
            return Project.at(path)
        p = self.catalog.get(str(ref))
        if p is None:
            raise LoomError(f"project {ref} is not in the catalog", code="NOT_IN_CATALOG")
        return p

    def _path(self, ref: ProjectRef) -> Path:
        return self.project(ref).path

    def _key(self, ref: ProjectRef) -> str:
        return self.project(ref).id

    def add_project(self, path: Path | str, *, label: str | None = None, create: bool = False) -> Project:
        return self.catalog.add(path, label=label, now=self.clock.now(), create=create)

    def remove_project(self, ref: ProjectRef) -> Project:
        """Take the project out of the catalog (nothing on disk is touched); NOT_IN_CATALOG if it is not there."""
        removed = self.catalog.remove(self.project(ref).id)
        if removed is None:
            raise LoomError(f"project {ref} is not in the catalog", code="NOT_IN_CATALOG")
        return removed

    # ------------------------------------------------------------------ reads
    def row(self, p: Project, now: str | None = None, *, stall_after_min: float | None = None) -> dict[str, Any]:
        from loom_core.control.status import project_status

        now = now or self.clock.now()
        try:
            st = project_status(p.dir, now, stall_after_min=stall_after_min, polled=True)
        except LoomError as exc:
            st = {"status": "unavailable", "error": str(exc), "task_id": None}
        except OSError as exc:
            st = {"status": "unavailable", "error": exc.strerror or str(exc), "task_id": None}
        if not os.path.isdir(p.dir):
            st = {"status": "unavailable", "error": "directory is missing", "task_id": None}
        st = dict(st)
        st.update({"id": p.id, "name": p.name, "dir": p.dir, "driving": p.id in self._running})
        if st.get("status") == "finished":
            st["status"] = st.get("verdict") or st.get("state") or "finished"
        return st

    def fleet(self) -> list[dict[str, Any]]:
        from loom_core.control.status import stall_minutes

        now = self.clock.now()
        try:
            stall = stall_minutes()  # once per poll, not once per project
        except LoomError:
            stall = None  # each row then names the bad setting
        return [self.row(p, now, stall_after_min=stall) for p in self.catalog.projects]

    def status(self, ref: ProjectRef, *, stall_after_min: float | None = None,
               with_sandbox: bool = False) -> dict[str, Any]:
        from loom_core.control.status import project_status

        return project_status(self._path(ref), self.clock.now(), stall_after_min=stall_after_min,
                              with_sandbox=with_sandbox)

    def now(self) -> str:
        return self.clock.now()

    def is_driving(self, ref: ProjectRef) -> bool:
        return self._key(ref) in self._running

    def history(self, ref: ProjectRef) -> list[dict[str, Any]]:
        from loom_core.control.views import archived

        return archived(self._path(ref))

    def store_of(self, ref: ProjectRef, task_id: str | None = None) -> Path | None:
        from loom_core.control.views import store_path

        return store_path(self._path(ref), task_id)

    def chain(self, ref: ProjectRef, task_id: str | None = None) -> dict[str, Any] | None:
        from loom_core.control.views import chain

        path = self.store_of(ref, task_id)
        return None if path is None else chain(path)

    def run_detail(self, ref: ProjectRef, agent_run_id: str, task_id: str | None = None) -> dict[str, Any]:
        from loom_core.control.views import run_detail

        path = self.store_of(ref, task_id)
        if path is None:
            raise LoomError(f"no task store in {self._path(ref)}", code="NO_ACTIVE_TASK")
        return run_detail(path, agent_run_id)

    def gate(self, ref: ProjectRef) -> dict[str, Any] | None:
        from loom_core.control.views import gate_view

        return gate_view(self._path(ref))

    def work_dirs(self, ref: ProjectRef) -> list[Path]:
        from loom_core.control.views import work_dirs

        return work_dirs(self._path(ref))

    def diff(self, ref: ProjectRef) -> str:
        from loom_core.control.views import sandbox_diff

        return sandbox_diff(self._path(ref))

    def ticks(self, ref: ProjectRef, task_id: str | None = None) -> list[dict[str, Any]]:
        from loom_core.control.views import ticks

        path = self.store_of(ref, task_id)
        return [] if path is None else ticks(path)

    def verify(self, ref: ProjectRef, task_id: str | None = None) -> Any:
        from loom_core.engine.verify import verify
        from loom_core.store.locate import task_store

        proj = self._path(ref)
        return verify(proj, task_store(proj, task_id))  # NoActiveTask / TaskNotFound name what is missing

    def replay(self, ref: ProjectRef, task_id: str, *, extra_invariants: list[Any] | None = None) -> Any:
        from loom_core.engine.replay import replay
        from loom_core.store.locate import task_store

        return replay(task_store(self._path(ref), task_id), extra_invariants=extra_invariants or [])

    def states(self, ref: ProjectRef, task_id: str) -> tuple[dict[int, dict[str, Any]], list[str]]:
        """Each tick's task state of a recorded run (re-fed into a scratch store), and its bundle's phase
        order ([] when the bundle is unknown): what a step-by-step replay view shows."""
        from loom_core.bundles import load_bundle
        from loom_core.engine.replay import states

        path = self.store_of(ref, task_id)
        if path is None:
            raise LoomError(f"no task '{task_id}' in {self._path(ref)} (see 'loom history')", code="TASK_NOT_FOUND")
        got = states(path)
        first = next(iter(got.values()), None)
        bundle = ((first or {}).get("pipeline") or {}).get("bundle")
        try:
            order = list(load_bundle(bundle).phases) if bundle else []
        except LoomError:
            order = []
        return got, order

    # ------------------------------------------------------------------ task verbs
    def run_options(self, ref: ProjectRef) -> RunOptions:
        """The options the project's task was started with (defaults when there is none)."""
        from loom_core.engine.exec_file import load_exec

        return load_exec(self._path(ref))

    def _runner(self, ref: ProjectRef, opts: RunOptions | None = None, *,
                cancel: threading.Event | None = None) -> TaskRunner:
        from loom_core.engine.runner import TaskRunner

        p = self.project(ref)
        opts = opts or self.run_options(p.path)
        if opts.backend == "demo" and self.demo_delay_s:
            opts.demo_delay_s = self.demo_delay_s
        extra = {"new_id": self.new_id} if self.new_id is not None else {}
        return TaskRunner(p.path, opts, sink=self.sink_for(p.id), clock=self.clock, cancel=cancel,
                          spawn_gate=self.spawn_gate, **extra)

    def _drive(self, ref: ProjectRef, opts: RunOptions | None, fn: Callable[[TaskRunner], RunResult]) -> RunResult:
        key = self._key(ref)
        with self._lock:
            if key in self._running:
                raise LoomError("this project is already being driven", code="PROJECT_BUSY")
            self._running.add(key)
            cancel = self._cancel[key] = threading.Event()
        try:
            return fn(self._runner(ref, opts, cancel=cancel))
        finally:
            with self._lock:
                self._running.discard(key)
                self._stopped.notify_all()

    def submit(self, ref: ProjectRef, task: str, opts: RunOptions) -> RunResult:
        return self._drive(ref, opts, lambda runner: runner.start(task))

    def proceed(self, ref: ProjectRef, opts: RunOptions | None = None) -> RunResult:
        """Drive the task on; ``opts`` replace the options it was started with (``loom proceed --backend``)."""
        return self._drive(ref, opts, lambda runner: runner.proceed())

    resume = proceed

    def answer(self, ref: ProjectRef, decision: str, note: str | None = None, *,
               gate_event_id: str | None = None) -> dict[str, Any]:
        out = self._runner(ref).answer(decision, note, gate_event_id=gate_event_id)
        self.notify_answered()  # a supervisor parked on this client wakes at once
        return out

    def pause(self, ref: ProjectRef) -> bool:
        key = self._key(ref)
        ev = self._cancel.get(key)
        if ev is None or key not in self._running:
            return False
        ev.set()
        return True

    def wait_stopped(self, ref: ProjectRef, timeout_s: float = STOP_WAIT_S) -> bool:
        """Wait until this client no longer drives the project; ``False`` on timeout."""
        key = self._key(ref)
        deadline = time.monotonic() + timeout_s
        with self._stopped:
            while key in self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._stopped.wait(left)
        return True

    def cancel(self, ref: ProjectRef) -> dict[str, Any]:
        """Stop this client's drive (the running agent is stopped too), then abandon under the lock."""
        if self.pause(ref) and not self.wait_stopped(ref):
            raise LoomError("the drive has not stopped yet; try again in a moment", code="PROJECT_BUSY")
        return self._runner(ref).recover("abandon")

    def recover(self, ref: ProjectRef, choice: str) -> dict[str, Any]:
        return self._runner(ref).recover(choice)

    def reset(self, ref: ProjectRef, *, force: bool = False) -> dict[str, Any]:
        """Archive the task and remove its sandbox, under the lock. ``{"task_id": None}`` when there is none."""
        from loom_core.control.status import project_status
        from loom_core.engine.runner import ProjectLock
        from loom_core.store.archive import archive
        from loom_core.workspace import Workspace
        from loom_core.workspace.sandbox import remove_sandbox

        proj = self._path(ref)
        with ProjectLock(proj):
            now = self.clock.now()
            st = project_status(proj, now)
            if not st["task_id"]:
                return {"task_id": None, "archive": None, "sandbox": None}
            dest = archive(proj, reason="force-reset" if force else "reset", now=now, force=force)
            sandbox = Workspace.sandbox_path(proj)
            removed = None
            if os.path.lexists(sandbox):
                remove_sandbox(sandbox)  # renamed aside first: a kill never leaves a half-deleted sandbox
                removed = sandbox
            return {"task_id": st["task_id"], "archive": dest, "sandbox": removed}

    def push(self, ref: ProjectRef, branch: str, remote: str | None = None) -> str:
        """Push ``branch`` under the project lock (nothing lands on it meanwhile)."""
        from loom_core.engine.lock import ProjectLock
        from loom_core.workspace import ship

        proj = self._path(ref)
        with ProjectLock(proj):
            return ship.push(proj, branch, remote)

    def merge(self, ref: ProjectRef, branch: str) -> str:
        """Squash-merge under the project lock: never while a drive of this project lands work."""
        from loom_core.engine.lock import ProjectLock
        from loom_core.workspace import ship

        proj = self._path(ref)
        with ProjectLock(proj):
            return ship.squash_merge(proj, branch)

    def branch_exists(self, ref: ProjectRef, branch: str) -> bool:
        from loom_core.workspace import ship

        return ship.branch_exists(self._path(ref), branch)
