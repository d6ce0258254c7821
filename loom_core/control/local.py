"""The console's view of the engine: catalog rows with status, and task verbs run per project.

No Textual here. Verbs block (they drive the engine); the console calls them from thread
workers. A per-project cancel token stops a drive between steps; the per-project file lock
keeps a second driver (another console, a `loom run`) out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loom_core.control.catalog import Catalog, Project
from loom_core.control.status import project_status
from loom_core.engine.clock import SystemClock
from loom_core.engine.events import EventSink, NullSink
from loom_core.engine.runner import RunOptions, RunResult, TaskRunner, load_exec
from loom_core.errors import LoomError


class ConsoleService:
    def __init__(self, catalog: Catalog | None = None, *, sink_for: Callable[[str], EventSink] | None = None,
                 clock: SystemClock | None = None, demo_delay_s: float = 0.0) -> None:
        self.catalog = catalog or Catalog.load()
        self.sink_for = sink_for or (lambda _pid: NullSink())
        self.clock = clock or SystemClock()
        self.demo_delay_s = demo_delay_s
        self._cancel: dict[str, threading.Event] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reads
    def project(self, pid: str) -> Project:
        p = self.catalog.get(pid)
        if p is None:
            raise LoomError(f"project {pid} is not in the catalog", code="NOT_IN_CATALOG")
        return p

    def row(self, p: Project, now: str | None = None) -> dict[str, Any]:
        now = now or self.clock.now()
        try:
            st = project_status(p.dir, now)
        except LoomError as exc:
            st = {"status": "unavailable", "error": str(exc), "task_id": None}
        except OSError as exc:
            st = {"status": "unavailable", "error": exc.strerror or str(exc), "task_id": None}
        if not Path(p.dir).is_dir():
            st = {"status": "unavailable", "error": "directory is missing", "task_id": None}
        st = dict(st)
        st.update({"id": p.id, "name": p.name, "dir": p.dir, "driving": p.id in self._running})
        if st.get("status") == "finished":
            st["status"] = st.get("verdict") or st.get("state") or "finished"
        return st

    def rows(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        return [self.row(p, now) for p in self.catalog.projects]

    def is_running(self, pid: str) -> bool:
        return pid in self._running

    # ------------------------------------------------------------------ verbs (blocking)
    def _runner(self, pid: str, opts: RunOptions | None = None) -> TaskRunner:
        p = self.project(pid)
        opts = opts or load_exec(p.path)
        if opts.backend == "demo" and self.demo_delay_s:
            opts.demo_delay_s = self.demo_delay_s
        cancel = threading.Event()
        self._cancel[pid] = cancel
        return TaskRunner(p.path, opts, sink=self.sink_for(pid), clock=self.clock, cancel=cancel)

    def _guarded(self, pid: str, fn: Callable[[], RunResult]) -> RunResult:
        with self._lock:
            if pid in self._running:
                raise LoomError("this project is already being driven", code="PROJECT_BUSY")
            self._running.add(pid)
        try:
            return fn()
        finally:
            with self._lock:
                self._running.discard(pid)

    def submit(self, pid: str, task: str, opts: RunOptions) -> RunResult:
        runner = self._runner(pid, opts)
        return self._guarded(pid, lambda: runner.start(task))

    def proceed(self, pid: str) -> RunResult:
        runner = self._runner(pid)
        return self._guarded(pid, runner.proceed)

    def answer(self, pid: str, decision: str, note: str | None = None) -> dict[str, Any]:
        p = self.project(pid)
        return TaskRunner(p.path, load_exec(p.path), sink=self.sink_for(pid), clock=self.clock).answer(decision, note)

    def pause(self, pid: str) -> None:
        ev = self._cancel.get(pid)
        if ev is not None:
            ev.set()

    def cancel_task(self, pid: str) -> dict[str, Any]:
        """Stop the drive and abandon the task."""
        from loom_core.engine.engine import Engine

        self.pause(pid)
        p = self.project(pid)
        engine = Engine(p.path, clock=self.clock, create=False)
        try:
            return engine.recover("abandon").wire["directive"]
        finally:
            engine.close()
